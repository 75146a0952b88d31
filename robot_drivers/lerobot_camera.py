"""A LeRobot camera (OpenCV, RealSense, ...) by type and config, as RGB frames (no ROS).

``make_lerobot_camera({"type": "opencv", "index_or_path": 0, "width": 640, "height":
480, "fps": 30})`` builds LeRobot's own camera class from the fields of its
``CameraConfig`` (``type``: the name LeRobot registers, ``opencv`` or ``intelrealsense``;
the rest: that config's fields). ``lerobot_arm_node`` publishes its frames as
``image_raw`` when its ``camera`` parameter is set, an alternative to ``camera_node``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
from lerobot.cameras import Camera, CameraConfig, make_cameras_from_configs

logger = logging.getLogger(__name__)

# camera types registered by a lerobot.cameras submodule of another name
CAMERA_MODULES = {"intelrealsense": "realsense"}


def make_lerobot_camera(spec: dict[str, Any]) -> Camera:
    """LeRobot's camera for ``{"type": ..., <its config fields>}`` (not connected yet)."""
    fields = dict(spec)
    kind = fields.pop("type", "")
    if not kind:
        raise ValueError(f"camera {spec!r} needs a 'type' (e.g. opencv, intelrealsense)")
    module = CAMERA_MODULES.get(kind, kind)
    with contextlib.suppress(ModuleNotFoundError):  # a plugin's type is looked up below
        importlib.import_module(f"lerobot.cameras.{module}")
    try:
        config_cls = CameraConfig.get_choice_class(kind)
    except (KeyError, ValueError):
        known = sorted(CameraConfig.get_known_choices())
        raise ValueError(f"camera type {kind!r} is not a LeRobot camera (known: {known})") from None
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(fields) - names)
    if unknown:
        raise ValueError(f"camera type {kind!r} has no config fields {unknown}")
    path = fields.get("index_or_path")
    if isinstance(path, str):  # a device path or a file: LeRobot wants a Path there
        fields["index_or_path"] = Path(path)
    return make_cameras_from_configs({"camera": config_cls(**fields)})["camera"]


def read_rgb(camera: Camera, max_age_ms: int = 500) -> np.ndarray:
    """The camera's newest frame as (H, W, 3) uint8 RGB (LeRobot's default colour mode)."""
    frame = np.asarray(camera.read_latest(max_age_ms=max_age_ms))
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"camera frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    return frame
