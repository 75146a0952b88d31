"""Typed boundaries between camera, video model, inverse dynamics and the arm.

Units live in field names (``_rad``, ``_s``, ``_hz``); array shapes are in comments.
These are plain dataclasses over numpy so that model, math and ROS code share them
without any ROS message type leaking into the core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from executor_core.config_cli import require_positive


@dataclass(frozen=True)
class Observation:
    """One camera frame with the joint state measured closest to it."""

    image_rgb: np.ndarray  # (H, W, 3) uint8, RGB
    stamp_s: float  # capture time, seconds (ROS time or sim time)
    joint_positions_rad: np.ndarray | None = None  # (J,) float, radians
    joint_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        img = self.image_rgb
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            shape = getattr(img, "shape", None)
            raise ValueError(f"image_rgb must be an (H, W, 3) array, got shape {shape!r}")
        if img.dtype != np.uint8:
            raise ValueError(f"image_rgb must be uint8, got dtype {img.dtype!r}")
        if not math.isfinite(self.stamp_s):  # an age computed from it would pass every check
            raise ValueError(f"stamp_s must be finite, got {self.stamp_s!r}")
        if self.joint_positions_rad is not None:
            q = np.asarray(self.joint_positions_rad)
            if q.ndim != 1:
                raise ValueError(f"joint_positions_rad must be 1-D, got shape {q.shape!r}")
            if self.joint_names and len(self.joint_names) != q.shape[0]:
                raise ValueError(
                    f"{len(self.joint_names)} joint_names for {q.shape[0]} joint positions"
                )


@dataclass(frozen=True)
class ActionChunk:
    """Absolute joint-position targets for H consecutive control steps."""

    joint_positions_rad: np.ndarray  # (H, J) float32, radians (gripper joint too)
    control_rate_hz: float  # spacing of the rows
    joint_names: tuple[str, ...]

    def __post_init__(self) -> None:
        q = self.joint_positions_rad
        if q.ndim != 2 or q.shape[1] != len(self.joint_names):
            raise ValueError(
                f"joint_positions_rad must be (H, {len(self.joint_names)}), got {q.shape!r}"
            )
        require_positive("control_rate_hz", self.control_rate_hz)

    @property
    def horizon(self) -> int:
        return int(self.joint_positions_rad.shape[0])


@dataclass(frozen=True)
class JointTrajectory:
    """A joint trajectory as ros2_control's joint_trajectory_controller consumes it.

    ``time_from_start_s`` is strictly increasing and relative to the trajectory start.
    Velocities are optional; when absent the controller interpolates positions.
    """

    joint_names: tuple[str, ...]
    positions_rad: np.ndarray  # (N, J) float64, radians
    time_from_start_s: np.ndarray  # (N,) float64, seconds, strictly increasing, > 0
    velocities_rad_s: np.ndarray | None = None  # (N, J) float64, rad/s
    accelerations_rad_s2: np.ndarray | None = None  # (N, J) float64, rad/s^2
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_joints = len(self.joint_names)
        if len(set(self.joint_names)) != n_joints:
            raise ValueError(f"duplicate joint names in {self.joint_names!r}")
        p = self.positions_rad
        if p.ndim != 2 or p.shape[1] != n_joints or p.shape[0] == 0:
            raise ValueError(f"positions_rad must be (N>0, {n_joints}), got {p.shape!r}")
        t = self.time_from_start_s
        if t.shape != (p.shape[0],):
            raise ValueError(f"time_from_start_s must be ({p.shape[0]},), got {t.shape!r}")
        if np.any(np.diff(t) <= 0) or t[0] < 0:
            raise ValueError(f"time_from_start_s must be >= 0 and strictly increasing, got {t!r}")
        for name in ("velocities_rad_s", "accelerations_rad_s2"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != p.shape:
                raise ValueError(f"{name} must be {p.shape!r}, got {arr.shape!r}")

    @property
    def duration_s(self) -> float:
        return float(self.time_from_start_s[-1])
