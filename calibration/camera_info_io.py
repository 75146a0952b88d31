"""Read and write ROS ``camera_info`` YAML files (the camera_calibration_parsers format).

The format is what ``camera_calibration`` writes and ``camera_info_manager`` reads::

    image_width: 640
    image_height: 480
    camera_name: scene_camera
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, p1, p2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [...]}
    projection_matrix: {rows: 3, cols: 4, data: [...]}

Matrices are row-major. The ROS camera node publishes ``sensor_msgs/CameraInfo`` from
:meth:`CameraInfoData.as_msg_fields`, so this module stays free of ROS types.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from executor_core.atomic_io import write_text_atomic

logger = logging.getLogger(__name__)

# Distortion models that sensor_msgs/distortion_models.hpp names, with their coefficient
# counts (None: any count, as ROS allows for the rational model written with 8 or 14).
DISTORTION_MODELS: dict[str, tuple[int, ...]] = {
    "plumb_bob": (5,),
    "rational_polynomial": (8, 12, 14),
    "equidistant": (4,),
}


@dataclass(frozen=True)
class CameraInfoData:
    """One camera's calibration, as in ``sensor_msgs/CameraInfo`` (pixels, row-major)."""

    image_width_px: int
    image_height_px: int
    camera_name: str
    camera_matrix: np.ndarray  # (3, 3) float64, K: fx, fy, cx, cy in pixels
    distortion_model: str  # "plumb_bob" | "rational_polynomial" | "equidistant"
    distortion_coefficients: np.ndarray  # (N,) float64, D
    rectification_matrix: np.ndarray  # (3, 3) float64, R (identity for a mono camera)
    projection_matrix: np.ndarray  # (3, 4) float64, P: the rectified image's intrinsics

    def __post_init__(self) -> None:
        if int(self.image_width_px) <= 0 or int(self.image_height_px) <= 0:
            raise ValueError(
                f"image size must be positive, got {self.image_width_px!r} x "
                f"{self.image_height_px!r}"
            )
        shapes = {
            "camera_matrix": (3, 3),
            "rectification_matrix": (3, 3),
            "projection_matrix": (3, 4),
        }
        for name, shape in shapes.items():
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {value.shape!r}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} has non-finite entries: {value.tolist()!r}")
            object.__setattr__(self, name, value)
        dist = np.asarray(self.distortion_coefficients, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(dist)):
            raise ValueError(f"distortion_coefficients non-finite: {dist.tolist()!r}")
        object.__setattr__(self, "distortion_coefficients", dist)
        expected = DISTORTION_MODELS.get(self.distortion_model)
        if expected is None:
            raise ValueError(
                f"distortion_model {self.distortion_model!r} is not one of "
                f"{sorted(DISTORTION_MODELS)}"
            )
        # An all-zero or empty D is how drivers say "no distortion"; accept any length then.
        if dist.size and np.any(dist != 0.0) and dist.size not in expected:
            raise ValueError(
                f"distortion_model {self.distortion_model!r} takes {expected} coefficients, "
                f"got {dist.size}: {dist.tolist()!r}"
            )
        k = self.camera_matrix
        if not (k[0, 0] > 0 and k[1, 1] > 0):
            raise ValueError(f"camera_matrix focal lengths must be > 0, got {k.tolist()!r}")

    @property
    def fx_px(self) -> float:
        return float(self.camera_matrix[0, 0])

    @property
    def fy_px(self) -> float:
        return float(self.camera_matrix[1, 1])

    @property
    def cx_px(self) -> float:
        return float(self.camera_matrix[0, 2])

    @property
    def cy_px(self) -> float:
        return float(self.camera_matrix[1, 2])

    @property
    def image_size_px(self) -> tuple[int, int]:
        """(width, height), OpenCV's order."""
        return int(self.image_width_px), int(self.image_height_px)

    def as_msg_fields(self) -> dict[str, Any]:
        """Field values of ``sensor_msgs/msg/CameraInfo`` (ROS 2 names, flat lists)."""
        return {
            "width": int(self.image_width_px),
            "height": int(self.image_height_px),
            "distortion_model": self.distortion_model,
            "d": [float(v) for v in self.distortion_coefficients],
            "k": [float(v) for v in self.camera_matrix.reshape(-1)],
            "r": [float(v) for v in self.rectification_matrix.reshape(-1)],
            "p": [float(v) for v in self.projection_matrix.reshape(-1)],
        }

    def to_yaml_dict(self) -> dict[str, Any]:
        """The camera_calibration_parsers mapping (plain Python floats)."""

        def matrix(value: np.ndarray, rows: int, cols: int) -> dict[str, Any]:
            return {"rows": rows, "cols": cols, "data": [float(v) for v in value.reshape(-1)]}

        return {
            "image_width": int(self.image_width_px),
            "image_height": int(self.image_height_px),
            "camera_name": self.camera_name,
            "camera_matrix": matrix(self.camera_matrix, 3, 3),
            "distortion_model": self.distortion_model,
            "distortion_coefficients": matrix(
                self.distortion_coefficients, 1, self.distortion_coefficients.size
            ),
            "rectification_matrix": matrix(self.rectification_matrix, 3, 3),
            "projection_matrix": matrix(self.projection_matrix, 3, 4),
        }


def _read_matrix(data: dict[str, Any], key: str, path: Path, shape: tuple[int, int] | None):
    entry = data.get(key)
    if not isinstance(entry, dict) or "data" not in entry:
        raise ValueError(f"{path}: {key!r} must be a mapping with rows, cols, data; got {entry!r}")
    values = np.asarray(entry["data"], dtype=np.float64).reshape(-1)
    rows, cols = entry.get("rows"), entry.get("cols")
    if rows is not None and cols is not None and int(rows) * int(cols) != values.size:
        raise ValueError(
            f"{path}: {key!r} says {rows}x{cols} but has {values.size} values: {values.tolist()!r}"
        )
    if shape is None:
        return values
    if values.size != shape[0] * shape[1]:
        raise ValueError(f"{path}: {key!r} needs {shape[0] * shape[1]} values, got {values.size}")
    return values.reshape(shape)


def load_camera_info(path: str | Path) -> CameraInfoData:
    """Read a ROS camera_info YAML (ours or one written by ROS's camera_calibration)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"camera_info file not found: {path}")
    text = path.read_text()
    # OpenCV FileStorage files start with a %YAML:1.0 directive PyYAML rejects; they are
    # not camera_info files, so say what the file is rather than a parser trace.
    if text.lstrip().startswith("%YAML:1.0"):
        raise ValueError(f"{path}: this is an OpenCV FileStorage file, not a ROS camera_info YAML")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    missing = [
        key
        for key in ("image_width", "image_height", "camera_matrix", "distortion_coefficients")
        if key not in data
    ]
    if missing:
        raise ValueError(f"{path}: missing camera_info keys {missing}")
    camera_matrix = _read_matrix(data, "camera_matrix", path, (3, 3))
    dist = _read_matrix(data, "distortion_coefficients", path, None)
    rect = (
        _read_matrix(data, "rectification_matrix", path, (3, 3))
        if "rectification_matrix" in data
        else np.eye(3)
    )
    if "projection_matrix" in data:
        proj = _read_matrix(data, "projection_matrix", path, (3, 4))
    else:
        # camera_info_manager fills P from K for a mono camera when P is absent.
        proj = np.hstack([camera_matrix, np.zeros((3, 1))])
    return CameraInfoData(
        image_width_px=int(data["image_width"]),
        image_height_px=int(data["image_height"]),
        camera_name=str(data.get("camera_name", path.stem)),
        camera_matrix=camera_matrix,
        distortion_model=str(data.get("distortion_model", "plumb_bob")),
        distortion_coefficients=dist,
        rectification_matrix=rect,
        projection_matrix=proj,
    )


def _format_yaml(info: CameraInfoData) -> str:
    """Key order and flow-style ``data`` lists as camera_calibration writes them."""
    return yaml.safe_dump(info.to_yaml_dict(), sort_keys=False, default_flow_style=None, width=4096)


def save_camera_info(data: CameraInfoData, path: str | Path) -> Path:
    """Write ``data`` as a ROS camera_info YAML atomically; returns the path."""
    path = Path(path)
    for value in data.distortion_coefficients:
        if not math.isfinite(value):
            raise ValueError(f"refusing to write non-finite distortion {value!r} to {path}")
    text = _format_yaml(data)
    # The text must read back to the same numbers before it replaces anything.
    reread = yaml.safe_load(text)
    if reread["camera_matrix"]["data"] != data.to_yaml_dict()["camera_matrix"]["data"]:
        raise RuntimeError(f"camera_info serialisation does not round-trip for {path}")
    write_text_atomic(path, text)
    logger.info("wrote camera_info %s", path)
    return path
