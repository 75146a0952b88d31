"""Hand-eye files: recorded samples in, easy_handeye2-style result and static TF out.

Samples YAML (paths relative to the file)::

    joint_unit: rad          # rad | deg, of joint_positions
    joints_are: model        # model | real (real readings: mapped back through the
                             # description's offset_rad/direction first)
    joint_names: [...]       # optional; order of joint_positions (default: description's)
    samples:
      - joint_positions: [0.1, -0.4, 0.9, 0.6, 0.0, 0.2]
        image: sample_000.png
      - joint_positions: [...]
        camera_from_target: {translation_m: [x, y, z], rotation_xyzw: [x, y, z, w]}

The result has the same content as easy_handeye2's calibration file: ``parameters``
(name, calibration_type, robot_base_frame, robot_effector_frame, tracking_base_frame,
tracking_marker_frame, freehand_robot_movement) and ``transform`` (translation x, y, z;
rotation x, y, z, w) from the robot effector (eye-in-hand) or base (eye-on-base) frame to
the camera frame, which is what ``static_transform_publisher`` publishes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from calibration.handeye import HandEyeResult, Setup
from calibration.transforms import (
    make_pose,
    quaternion_xyzw_from_rotation,
    rotation_from_quaternion_xyzw,
)
from executor_core.atomic_io import write_text_atomic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedSample:
    joint_positions: np.ndarray  # (J,) as recorded, in the file's unit and order
    image_path: Path | None
    camera_from_target: np.ndarray | None  # (4, 4) metres


@dataclass(frozen=True)
class RecordedSamples:
    joint_unit: str  # "rad" | "deg"
    joints_are: str  # "model" | "real"
    joint_names: tuple[str, ...] | None
    samples: tuple[RecordedSample, ...]


def load_samples(path: str | Path) -> RecordedSamples:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hand-eye samples file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
        raise ValueError(f"{path}: expected a mapping with a 'samples' list")
    unit = data.get("joint_unit", "rad")
    if unit not in ("rad", "deg"):
        raise ValueError(f"{path}: joint_unit must be rad or deg, got {unit!r}")
    joints_are = data.get("joints_are", "model")
    if joints_are not in ("model", "real"):
        raise ValueError(f"{path}: joints_are must be model or real, got {joints_are!r}")
    names = data.get("joint_names")
    samples = []
    for i, entry in enumerate(data["samples"]):
        if not isinstance(entry, dict) or "joint_positions" not in entry:
            raise ValueError(f"{path}: sample {i} needs joint_positions, got {entry!r}")
        image = entry.get("image")
        pose = entry.get("camera_from_target")
        if (image is None) == (pose is None):
            raise ValueError(f"{path}: sample {i} needs exactly one of image, camera_from_target")
        camera_from_target = None
        if pose is not None:
            camera_from_target = make_pose(
                rotation_from_quaternion_xyzw(np.asarray(pose["rotation_xyzw"])),
                np.asarray(pose["translation_m"]),
            )
        samples.append(
            RecordedSample(
                joint_positions=np.asarray(entry["joint_positions"], dtype=np.float64),
                image_path=(path.parent / image) if image is not None else None,
                camera_from_target=camera_from_target,
            )
        )
    return RecordedSamples(unit, joints_are, tuple(names) if names else None, tuple(samples))


def save_samples(path: str | Path, joint_positions_rad: np.ndarray, images: list[str]) -> Path:
    """Write a samples file (model radians, image names relative to ``path``)."""
    data = {
        "joint_unit": "rad",
        "joints_are": "model",
        "samples": [
            {"joint_positions": [float(v) for v in q], "image": name}
            for q, name in zip(joint_positions_rad, images, strict=True)
        ],
    }
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


@dataclass(frozen=True)
class HandEyeFrames:
    robot_base_frame: str = "base_link"
    robot_effector_frame: str = "gripper_link"
    tracking_base_frame: str = "camera_optical_frame"  # the optical frame PnP poses are in
    tracking_marker_frame: str = "calibration_target"


def result_to_easy_handeye2(result: HandEyeResult, frames: HandEyeFrames, name: str) -> dict:
    t = result.best.transform[:3, 3]
    q = quaternion_xyzw_from_rotation(result.best.transform[:3, :3])
    return {
        "parameters": {
            "name": name,
            "calibration_type": result.setup,
            "robot_base_frame": frames.robot_base_frame,
            "robot_effector_frame": frames.robot_effector_frame,
            "tracking_base_frame": frames.tracking_base_frame,
            "tracking_marker_frame": frames.tracking_marker_frame,
            "freehand_robot_movement": False,
        },
        "transform": {
            "translation": {"x": float(t[0]), "y": float(t[1]), "z": float(t[2])},
            "rotation": {"x": float(q[0]), "y": float(q[1]), "z": float(q[2]), "w": float(q[3])},
        },
    }


@dataclass(frozen=True)
class StaticTransform:
    """What a ROS user publishes with ``static_transform_publisher``."""

    parent_frame: str
    child_frame: str
    parent_from_child: np.ndarray  # (4, 4) metres
    calibration_type: Setup

    def publisher_args(self) -> list[str]:
        """Arguments of ``ros2 run tf2_ros static_transform_publisher`` (Humble+ style)."""
        t = self.parent_from_child[:3, 3]
        q = quaternion_xyzw_from_rotation(self.parent_from_child[:3, :3])
        values = {"x": t[0], "y": t[1], "z": t[2], "qx": q[0], "qy": q[1], "qz": q[2], "qw": q[3]}
        args = []
        for key, value in values.items():
            args += [f"--{key}", f"{value:.9g}"]
        return [*args, "--frame-id", self.parent_frame, "--child-frame-id", self.child_frame]


def save_handeye_result(
    result: HandEyeResult, path: str | Path, frames: HandEyeFrames, name: str
) -> Path:
    text = yaml.safe_dump(result_to_easy_handeye2(result, frames, name), sort_keys=False)
    return write_text_atomic(path, text)


def load_handeye_result(path: str | Path) -> StaticTransform:
    """Read our (or easy_handeye2's) result file as the static transform to publish."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hand-eye result not found: {path}")
    data: Any = yaml.safe_load(path.read_text())
    try:
        params, transform = data["parameters"], data["transform"]
        setup = params["calibration_type"]
        tr, rot = transform["translation"], transform["rotation"]
        pose = make_pose(
            rotation_from_quaternion_xyzw(np.array([rot["x"], rot["y"], rot["z"], rot["w"]])),
            np.array([tr["x"], tr["y"], tr["z"]]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not an easy_handeye2-style result ({exc!r} missing)") from exc
    if setup not in ("eye_in_hand", "eye_on_base"):
        raise ValueError(f"{path}: calibration_type must be eye_in_hand/eye_on_base, got {setup!r}")
    parent = (
        params["robot_effector_frame"] if setup == "eye_in_hand" else params["robot_base_frame"]
    )
    return StaticTransform(parent, params["tracking_base_frame"], pose, setup)
