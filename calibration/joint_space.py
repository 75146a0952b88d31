"""Joint-space calibration: the model's joint angles vs. the real arm's reported joints.

The robot description stores, per joint, ``real_rad = direction * model_rad + offset_rad``
(see ``executor_core.robot_description``). Given recorded pairs (model angles of a pose,
the arm's readings in that pose) we fit ``direction`` (+1/-1) and ``offset_rad`` per joint,
and optionally tighten the model's limits to what the real arm can reach.

Readings are converted to radians first. Units (``ReportedUnit``):

- ``rad``: radians (a ``/joint_states`` topic);
- ``deg``: degrees (LeRobot's SO-101 with ``use_degrees=True``, its default);
- ``range_m100_100``: LeRobot's normalised -100..100 body joints, with the gripper in
  0..100 as LeRobot reads it; needs the LeRobot calibration JSON (``range_min`` /
  ``range_max`` ticks per motor) and maps ticks to radians as LeRobot's degree mode does,
  zero at the middle of the range.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from calibration.intrinsics import CalibrationError
from executor_core.atomic_io import write_text_atomic
from executor_core.robot_description import RobotDescription

logger = logging.getLogger(__name__)

ReportedUnit = Literal["rad", "deg", "range_m100_100"]
REPORTED_UNITS: tuple[str, ...] = ("rad", "deg", "range_m100_100")
# STS3215: 4096 ticks per turn; LeRobot divides by (resolution - 1) in its degree mode.
TICKS_MAX_RES = 4095
GRIPPER_JOINT = "gripper"


@dataclass(frozen=True)
class MotorRange:
    """One motor of a LeRobot calibration JSON (servo ticks)."""

    range_min: int
    range_max: int
    drive_mode: int = 0

    def __post_init__(self) -> None:
        if not self.range_min < self.range_max:
            raise ValueError(f"range_min {self.range_min!r} must be < range_max {self.range_max!r}")

    @property
    def mid_ticks(self) -> float:
        return (self.range_min + self.range_max) / 2.0

    def ticks_to_rad(self, ticks: np.ndarray) -> np.ndarray:
        return (np.asarray(ticks, dtype=np.float64) - self.mid_ticks) * 2 * math.pi / TICKS_MAX_RES


def load_lerobot_calibration(path: str | Path) -> dict[str, MotorRange]:
    """Read LeRobot's calibration JSON: ``{motor: {id, drive_mode, homing_offset,
    range_min, range_max}}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LeRobot calibration file not found: {path}")
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of motors, got {type(data).__name__}")
    out = {}
    for name, entry in data.items():
        try:
            out[name] = MotorRange(
                int(entry["range_min"]), int(entry["range_max"]), int(entry.get("drive_mode", 0))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: motor {name!r} entry {entry!r}: {exc}") from exc
    return out


def reported_to_rad(
    values: np.ndarray,
    unit: ReportedUnit,
    joint_names: tuple[str, ...],
    motors: dict[str, MotorRange] | None = None,
) -> np.ndarray:
    """(N, J) readings in ``unit`` -> (N, J) radians in the real arm's frame."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(joint_names):
        raise ValueError(f"readings must be (N, {len(joint_names)}), got {values.shape!r}")
    if unit == "rad":
        return values.copy()
    if unit == "deg":
        return np.radians(values)
    if unit != "range_m100_100":
        raise ValueError(f"unit must be one of {REPORTED_UNITS}, got {unit!r}")
    if motors is None:
        raise ValueError(
            "unit 'range_m100_100' needs the LeRobot calibration JSON (motor tick ranges) "
            "to convert to radians"
        )
    out = np.empty_like(values)
    for j, name in enumerate(joint_names):
        if name not in motors:
            raise ValueError(
                f"joint {name!r} missing from the LeRobot calibration {sorted(motors)}"
            )
        motor, v = motors[name], values[:, j]
        if name == GRIPPER_JOINT:
            bad = (v < 0) | (v > 100)
            v = 100.0 - v if motor.drive_mode else v
            fraction = v / 100.0
        else:
            bad = (v < -100) | (v > 100)
            v = -v if motor.drive_mode else v
            fraction = (v + 100.0) / 200.0
        if np.any(bad):
            raise ValueError(f"joint {name!r}: readings outside LeRobot's range: {values[bad, j]}")
        ticks = motor.range_min + fraction * (motor.range_max - motor.range_min)
        out[:, j] = motor.ticks_to_rad(ticks)
    return out


@dataclass(frozen=True)
class JointFit:
    name: str
    direction: int
    offset_rad: float
    rms_rad: float
    max_abs_rad: float
    spread_rad: float  # range of the model angles the fit saw
    direction_fitted: bool  # False: the joint barely moved, direction kept from the input


def fit_joint(
    name: str,
    model_rad: np.ndarray,
    real_rad: np.ndarray,
    current_direction: int,
    min_spread_rad: float = 0.2,
    max_rms_rad: float = 0.05,
) -> JointFit:
    """Fit ``real = direction * model + offset`` for one joint from (N,) pairs."""
    if model_rad.shape != real_rad.shape or model_rad.ndim != 1 or model_rad.size < 2:
        raise CalibrationError(
            f"joint {name!r}: need >= 2 pairs of equal length, got {model_rad.shape} and "
            f"{real_rad.shape}"
        )
    spread = float(model_rad.max() - model_rad.min())
    if spread >= min_spread_rad:
        # A free slope first: far from +-1 means the unit is wrong, not the joint.
        slope = float(np.polyfit(model_rad, real_rad, 1)[0])
        if not 0.8 <= abs(slope) <= 1.25:
            raise CalibrationError(
                f"joint {name!r}: readings change {slope:.3f} times as fast as the model "
                f"(expected +-1): wrong --unit (rad/deg/range_m100_100) or calibration file?"
            )
        directions = (1, -1)
    else:
        logger.warning(
            "joint %s moved only %.3f rad (< %.3f): direction kept at %+d",
            name,
            spread,
            min_spread_rad,
            current_direction,
        )
        directions = (current_direction,)
    best = None
    for direction in directions:
        residual = real_rad - direction * model_rad
        offset = float(residual.mean())
        error = residual - offset
        rms = float(np.sqrt(np.mean(error**2)))
        if best is None or rms < best.rms_rad:
            best = JointFit(
                name,
                direction,
                offset,
                rms,
                float(np.abs(error).max()),
                spread,
                len(directions) == 2,
            )
    assert best is not None
    if best.rms_rad > max_rms_rad:
        raise CalibrationError(
            f"joint {name!r}: real = {best.direction:+d} * model + {best.offset_rad:.4f} leaves "
            f"RMS {best.rms_rad:.4f} rad > {max_rms_rad} rad: pairs mismatched or not the same "
            f"poses?"
        )
    return best


def model_to_real_rad(description: RobotDescription, model_rad: np.ndarray) -> np.ndarray:
    """(..., J) model radians -> the real arm's radians with the stored calibration."""
    d = np.array([j.direction for j in description.joints], dtype=np.float64)
    o = np.array([j.offset_rad for j in description.joints])
    return d * np.asarray(model_rad, dtype=np.float64) + o


def real_to_model_rad(description: RobotDescription, real_rad: np.ndarray) -> np.ndarray:
    """(..., J) real radians -> model radians (direction is +-1, so it is its own inverse)."""
    d = np.array([j.direction for j in description.joints], dtype=np.float64)
    o = np.array([j.offset_rad for j in description.joints])
    return d * (np.asarray(real_rad, dtype=np.float64) - o)


def apply_fits(
    description: RobotDescription,
    fits: list[JointFit],
    motors: dict[str, MotorRange] | None = None,
) -> RobotDescription:
    """A new description with the fitted offsets/directions; with ``motors`` the limits
    are also tightened (never widened) to the real arm's calibrated tick range."""
    by_name = {f.name: f for f in fits}
    unknown = sorted(set(by_name) - set(description.joint_names))
    if unknown:
        raise ValueError(f"fits for joints {unknown} not in the description")
    joints = []
    for joint in description.joints:
        fit = by_name.get(joint.name)
        if fit is None:
            joints.append(joint)
            continue
        updates: dict = {"offset_rad": fit.offset_rad, "direction": fit.direction}
        if motors is not None and joint.name in motors:
            motor = motors[joint.name]
            real = motor.ticks_to_rad(np.array([motor.range_min, motor.range_max]))
            model = np.sort(fit.direction * (real - fit.offset_rad))
            lower = max(joint.lower_rad, float(model[0]))
            upper = min(joint.upper_rad, float(model[1]))
            if not lower < upper:
                raise CalibrationError(
                    f"joint {joint.name!r}: the real range maps to model [{model[0]:.3f}, "
                    f"{model[1]:.3f}] rad, disjoint from [{joint.lower_rad}, {joint.upper_rad}]"
                )
            if not lower <= joint.home_rad <= upper:
                raise CalibrationError(
                    f"joint {joint.name!r}: home_rad {joint.home_rad} outside the calibrated "
                    f"limits [{lower:.4f}, {upper:.4f}]"
                )
            updates.update(lower_rad=lower, upper_rad=upper)
        joints.append(dataclasses.replace(joint, **updates))
    return dataclasses.replace(description, joints=tuple(joints))


def save_robot_description(description: RobotDescription, path: str | Path, note: str) -> Path:
    """Write the description YAML atomically (one flow mapping per joint, like the input)."""
    data = description.to_yaml_dict()
    lines = [f"# {line}" for line in note.splitlines()]
    lines.append(f"name: {description.name}")
    lines.append("joints:")
    for joint in data.pop("joints"):
        body = yaml.safe_dump(joint, default_flow_style=True, sort_keys=False, width=4096)
        lines.append(f"  - {body.strip()}")
    data.pop("name")
    if data:
        lines.append(yaml.safe_dump(data, sort_keys=False).rstrip())
    text = "\n".join(lines) + "\n"
    # Parse what we are about to write; a description that would not load is not written.
    parsed = yaml.safe_load(text)
    if [j["name"] for j in parsed["joints"]] != list(description.joint_names):
        raise RuntimeError(f"robot description serialisation does not round-trip for {path}")
    return write_text_atomic(path, text)
