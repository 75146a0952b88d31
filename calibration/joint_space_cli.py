"""``executor-calibrate-joints``: fit joint offsets/directions into a robot description.

    executor-calibrate-joints --preset lerobot_degrees --pairs=pairs.csv \
        --robot=config/robots/so101.yaml --output=config/robots/so101_calibrated.yaml

``pairs.csv`` has a header and one row per pose: ``model.<joint>`` columns (the model's
angles for the pose, radians) and ``reported.<joint>`` columns (what the real arm reports
in that pose, in ``--unit``). Joints without both columns keep their calibration. The
input description is never overwritten unless ``--in_place=true``.
"""

from __future__ import annotations

import csv
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.intrinsics import CalibrationError
from calibration.joint_space import (
    REPORTED_UNITS,
    JointFit,
    ReportedUnit,
    apply_fits,
    fit_joint,
    load_lerobot_calibration,
    reported_to_rad,
    save_robot_description,
)
from executor_core.config_cli import (
    ConfigError,
    check_positive,
    cli_main,
    configure_cli_logging,
    parse_config,
)
from executor_core.robot_description import RobotDescription, default_robot_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JointCalibCliConfig:
    pairs: Path | None = None  # CSV of model.<joint> / reported.<joint> columns
    robot: Path | None = None  # input description; None: config/robots/so101.yaml
    output: Path | None = None  # None: <robot>.calibrated.yaml beside the input
    in_place: bool = False  # overwrite --robot itself
    unit: ReportedUnit = "deg"  # of the reported.* columns: rad, deg or range_m100_100
    lerobot_calibration: Path | None = None  # LeRobot motor ranges (range unit, limits)
    tighten_limits: bool = True  # with lerobot_calibration: limits to the real tick range
    min_spread_rad: float = 0.2  # a joint must move this much to fit its direction
    max_rms_rad: float = 0.05  # larger residuals mean mismatched pairs or wrong unit

    def __post_init__(self) -> None:
        if self.unit not in REPORTED_UNITS:
            raise ValueError(f"unit must be one of {REPORTED_UNITS}, got {self.unit!r}")
        check_positive(self, "min_spread_rad", "max_rms_rad")
        if self.in_place and self.output is not None:
            raise ValueError(f"--in_place and --output={self.output!s} contradict each other")


PRESETS: dict[str, JointCalibCliConfig] = {
    "debug": JointCalibCliConfig(unit="rad", min_spread_rad=0.1),
    "joint_states": JointCalibCliConfig(unit="rad"),
    "lerobot_degrees": JointCalibCliConfig(unit="deg"),
    "lerobot_range": JointCalibCliConfig(unit="range_m100_100"),
}


def read_pairs(
    path: Path, joint_names: tuple[str, ...]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(joints present, (N, K) model rad, (N, K) reported values) from the CSV."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"pairs file not found: {path}")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].lstrip().startswith("#")]
    if len(rows) < 3:
        raise CalibrationError(f"{path}: need a header and at least 2 pose rows, got {len(rows)}")
    header = [h.strip() for h in rows[0]]
    unknown = [
        h
        for h in header
        if h.split(".", 1)[0] not in ("model", "reported") or h.split(".", 1)[-1] not in joint_names
    ]
    if unknown:
        raise CalibrationError(
            f"{path}: unknown columns {unknown}; expected model.<joint> and reported.<joint> "
            f"for joints {joint_names}"
        )
    joints = [n for n in joint_names if f"model.{n}" in header and f"reported.{n}" in header]
    if not joints:
        raise CalibrationError(f"{path}: no joint has both model.<joint> and reported.<joint>")
    try:
        values = np.array([[float(v) for v in r] for r in rows[1:]])
    except ValueError as exc:
        raise CalibrationError(f"{path}: non-numeric value: {exc}") from None
    if values.shape[1] != len(header):
        raise CalibrationError(f"{path}: rows have {values.shape[1]} values, header {len(header)}")
    model = values[:, [header.index(f"model.{n}") for n in joints]]
    reported = values[:, [header.index(f"reported.{n}") for n in joints]]
    return joints, model, reported


def run(cfg: JointCalibCliConfig) -> tuple[list[JointFit], Path]:
    if cfg.pairs is None:
        raise ConfigError("--pairs is required (CSV of model.<joint>, reported.<joint>)")
    robot_path = Path(cfg.robot) if cfg.robot is not None else default_robot_path()
    description = RobotDescription.from_yaml(robot_path)
    joints, model, reported = read_pairs(cfg.pairs, description.joint_names)
    motors = load_lerobot_calibration(cfg.lerobot_calibration) if cfg.lerobot_calibration else None
    real = reported_to_rad(reported, cfg.unit, tuple(joints), motors)
    current = {j.name: j.direction for j in description.joints}
    fits = [
        fit_joint(name, model[:, i], real[:, i], current[name], cfg.min_spread_rad, cfg.max_rms_rad)
        for i, name in enumerate(joints)
    ]
    calibrated = apply_fits(description, fits, motors if cfg.tighten_limits else None)
    if cfg.in_place:
        output = robot_path
    elif cfg.output is not None:
        output = Path(cfg.output)
    else:
        output = robot_path.with_name(f"{robot_path.stem}.calibrated.yaml")
    note = (
        f"Written by executor-calibrate-joints from {cfg.pairs} (unit {cfg.unit}).\n"
        "real_rad = direction * model_rad + offset_rad"
    )
    save_robot_description(calibrated, output, note)
    return fits, output


@cli_main("executor-calibrate-joints")
def main(argv: list[str] | None = None) -> int:
    configure_cli_logging()
    cfg = parse_config(JointCalibCliConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    fits, output = run(cfg)
    print("joint          direction  offset [rad]  RMS [rad]  max [rad]  moved [rad]")
    for f in fits:
        kept = "" if f.direction_fitted else "  (direction kept: joint barely moved)"
        print(
            f"{f.name:<15}{f.direction:>+9d}{f.offset_rad:>14.4f}{f.rms_rad:>11.4f}"
            f"{f.max_abs_rad:>11.4f}{f.spread_rad:>13.3f}{kept}"
        )
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
