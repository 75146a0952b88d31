"""The robot description YAML: joint names, limits and home pose, one source for all.

Simulator, IDM, safety layer and calibration read the same file, so a limit is never
written twice. Format (``config/robots/so101.yaml``)::

    name: so101
    joints:
      - name: shoulder_pan
        lower_rad: -1.92
        upper_rad: 1.92
        max_velocity_rad_s: 3.0
        max_acceleration_rad_s2: 15.0
        home_rad: 0.0
        offset_rad: 0.0      # joint-space calibration: real = direction * model + offset
        direction: 1         # +1 or -1
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml


@dataclass(frozen=True)
class JointSpec:
    name: str
    lower_rad: float
    upper_rad: float
    max_velocity_rad_s: float
    max_acceleration_rad_s2: float
    home_rad: float = 0.0
    offset_rad: float = 0.0
    direction: int = 1

    def __post_init__(self) -> None:
        names = (
            "lower_rad",
            "upper_rad",
            "max_velocity_rad_s",
            "max_acceleration_rad_s2",
            "home_rad",
            "offset_rad",
        )
        bad = {n: getattr(self, n) for n in names if not math.isfinite(getattr(self, n))}
        if bad:
            raise ValueError(f"joint {self.name!r}: non-finite {bad!r}")
        if not self.lower_rad < self.upper_rad:
            raise ValueError(
                f"joint {self.name!r}: lower_rad {self.lower_rad!r} must be < upper_rad "
                f"{self.upper_rad!r}"
            )
        if self.max_velocity_rad_s <= 0 or self.max_acceleration_rad_s2 <= 0:
            raise ValueError(
                f"joint {self.name!r}: limits must be > 0, got velocity "
                f"{self.max_velocity_rad_s!r}, acceleration {self.max_acceleration_rad_s2!r}"
            )
        if not self.lower_rad <= self.home_rad <= self.upper_rad:
            raise ValueError(f"joint {self.name!r}: home_rad {self.home_rad!r} outside limits")
        if self.direction not in (1, -1):
            raise ValueError(
                f"joint {self.name!r}: direction must be +1 or -1, got {self.direction!r}"
            )


@dataclass(frozen=True)
class RobotDescription:
    name: str
    joints: tuple[JointSpec, ...]
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [j.name for j in self.joints]
        if not names:
            raise ValueError(f"robot {self.name!r} has no joints")
        if len(set(names)) != len(names):
            raise ValueError(f"robot {self.name!r}: duplicate joint names {names!r}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> RobotDescription:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"robot description not found: {path}")
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or "joints" not in data:
            raise ValueError(f"{path}: expected a mapping with 'joints', got {type(data).__name__}")
        joints = tuple(JointSpec(**j) for j in data["joints"])
        extra = {k: v for k, v in data.items() if k not in ("name", "joints")}
        return cls(name=str(data.get("name", path.stem)), joints=joints, extra=extra)

    def to_yaml_dict(self) -> dict:
        return {
            "name": self.name,
            "joints": [j.__dict__.copy() for j in self.joints],
            **self.extra,
        }

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def lower_rad(self) -> np.ndarray:  # (J,)
        return np.array([j.lower_rad for j in self.joints])

    @property
    def upper_rad(self) -> np.ndarray:  # (J,)
        return np.array([j.upper_rad for j in self.joints])

    @property
    def max_velocity_rad_s(self) -> np.ndarray:  # (J,)
        return np.array([j.max_velocity_rad_s for j in self.joints])

    @property
    def max_acceleration_rad_s2(self) -> np.ndarray:  # (J,)
        return np.array([j.max_acceleration_rad_s2 for j in self.joints])

    @property
    def home_rad(self) -> np.ndarray:  # (J,)
        return np.array([j.home_rad for j in self.joints])


def default_robot_path() -> Path:
    """The SO-101 description shipped with the repository (or installed beside it)."""
    here = Path(__file__).resolve().parent
    for candidate in (
        here.parent / "config" / "robots" / "so101.yaml",
        here / "data" / "so101.yaml",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("config/robots/so101.yaml not found next to executor_core")
