from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.intrinsics import CalibrationError
from calibration.joint_space import (
    MotorRange,
    fit_joint,
    model_to_real_rad,
    real_to_model_rad,
    reported_to_rad,
)
from calibration.joint_space_cli import main
from executor_core.robot_description import RobotDescription, default_robot_path

NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
TRUE_OFFSET_RAD = np.array([0.05, -0.12, 0.3, 0.0, -0.07, 0.02])
TRUE_DIRECTION = np.array([1, -1, 1, -1, 1, 1])


def _poses(rng: np.random.Generator, count: int = 12) -> np.ndarray:
    description = RobotDescription.from_yaml(default_robot_path())
    return rng.uniform(description.lower_rad * 0.6, description.upper_rad * 0.6, (count, 6))


def _write_pairs(path: Path, model: np.ndarray, reported: np.ndarray) -> Path:
    header = [f"model.{n}" for n in NAMES] + [f"reported.{n}" for n in NAMES]
    rows = [",".join(header), "# recorded by hand on the bench"]
    rows += [",".join(f"{v:.6f}" for v in [*m, *r]) for m, r in zip(model, reported, strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_fit_recovers_direction_and_offset(rng) -> None:
    model = np.linspace(-1.0, 1.0, 9)
    real = -model + 0.25 + rng.normal(0, 0.002, model.shape)
    fit = fit_joint("elbow_flex", model, real, current_direction=1)
    assert fit.direction == -1
    assert fit.offset_rad == pytest.approx(0.25, abs=0.003)
    assert fit.rms_rad < 0.004
    assert fit.direction_fitted


def test_unmoved_joint_keeps_direction_and_wrong_unit_is_refused(rng) -> None:
    still = np.full(5, 0.3) + rng.normal(0, 1e-3, 5)
    fit = fit_joint("gripper", still, -still + 0.1, current_direction=-1)
    assert fit.direction == -1
    assert not fit.direction_fitted
    model = np.linspace(-1.0, 1.0, 9)
    with pytest.raises(CalibrationError, match="wrong --unit"):
        fit_joint("wrist_flex", model, np.degrees(model), current_direction=1)
    with pytest.raises(CalibrationError, match="RMS"):
        fit_joint("wrist_flex", model, model + rng.normal(0, 0.2, 9), current_direction=1)


def test_cli_writes_a_calibrated_copy_from_degrees(tmp_path: Path, rng, capsys) -> None:
    model = _poses(rng)
    real_deg = np.degrees(TRUE_DIRECTION * model + TRUE_OFFSET_RAD)
    real_deg += rng.normal(0, 0.088, real_deg.shape)  # one STS3215 tick of noise
    pairs = _write_pairs(tmp_path / "pairs.csv", model, real_deg)
    robot = tmp_path / "so101.yaml"
    robot.write_text(default_robot_path().read_text())
    before = robot.read_text()
    assert main([f"--pairs={pairs}", f"--robot={robot}", "--unit=deg"]) == 0
    assert robot.read_text() == before, "input description must not change"
    out = tmp_path / "so101.calibrated.yaml"
    calibrated = RobotDescription.from_yaml(out)
    assert [j.direction for j in calibrated.joints] == TRUE_DIRECTION.tolist()
    np.testing.assert_allclose(
        [j.offset_rad for j in calibrated.joints], TRUE_OFFSET_RAD, atol=np.radians(0.1)
    )
    np.testing.assert_allclose(calibrated.lower_rad, RobotDescription.from_yaml(robot).lower_rad)
    # The stored calibration maps back: model -> real -> model.
    round_trip = real_to_model_rad(calibrated, model_to_real_rad(calibrated, model))
    np.testing.assert_allclose(round_trip, model)
    assert "offset [rad]" in capsys.readouterr().out


def test_cli_lerobot_range_unit_tightens_limits_in_place(tmp_path: Path, rng) -> None:
    motors = {n: MotorRange(1000, 3100) for n in NAMES}
    motors["wrist_roll"] = MotorRange(200, 3900, drive_mode=1)
    lerobot = {
        name: {"id": i + 1, "drive_mode": m.drive_mode, "homing_offset": 0}
        | {"range_min": m.range_min, "range_max": m.range_max}
        for i, (name, m) in enumerate(motors.items())
    }
    (tmp_path / "so101_follower.json").write_text(json.dumps(lerobot))
    model = _poses(rng) * 0.5
    real_rad = TRUE_DIRECTION * model + TRUE_OFFSET_RAD
    # Invert LeRobot's normalisation to produce what the arm would report.
    reported = np.empty_like(real_rad)
    for j, name in enumerate(NAMES):
        m = motors[name]
        ticks = real_rad[:, j] * 4095 / (2 * np.pi) + m.mid_ticks
        fraction = (ticks - m.range_min) / (m.range_max - m.range_min)
        if name == "gripper":
            reported[:, j] = fraction * 100
        else:
            value = fraction * 200 - 100
            reported[:, j] = -value if m.drive_mode else value
    np.testing.assert_allclose(
        reported_to_rad(reported, "range_m100_100", NAMES, motors), real_rad, atol=1e-12
    )
    pairs = _write_pairs(tmp_path / "pairs.csv", model, reported)
    robot = tmp_path / "so101.yaml"
    robot.write_text(default_robot_path().read_text())
    argv = [
        f"--pairs={pairs}", f"--robot={robot}", "--unit=range_m100_100", "--in_place=true",
        f"--lerobot_calibration={tmp_path / 'so101_follower.json'}",
    ]  # fmt: skip
    assert main(argv) == 0
    calibrated = RobotDescription.from_yaml(robot)
    offsets = [j.offset_rad for j in calibrated.joints]
    np.testing.assert_allclose(offsets, TRUE_OFFSET_RAD, atol=1e-5)
    # 2100 ticks = 3.22 rad of travel around the middle: limits shrink to it, shifted.
    half = 1050 * 2 * np.pi / 4095
    pan = calibrated.joints[0]
    assert pan.lower_rad == pytest.approx(max(-1.91986, -half - 0.05), abs=1e-6)
    assert pan.upper_rad == pytest.approx(min(1.91986, half - 0.05), abs=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--pairs is required"),
        (["--pairs=x.csv", "--unit=percent"], "percent"),
        (["--pairs=x.csv", "--in_place=true", "--output=y.yaml"], "contradict"),
        (["--pairs=/nonexistent.csv"], "not found"),
    ],
)
def test_cli_bad_arguments(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_range_unit_needs_lerobot_file_and_csv_columns_are_checked(tmp_path: Path, rng) -> None:
    with pytest.raises(ValueError, match="needs the LeRobot calibration"):
        reported_to_rad(np.zeros((2, 6)), "range_m100_100", NAMES)
    bad = tmp_path / "bad.csv"
    bad.write_text("model.shoulder_pan,reported.elbow\n0,0\n1,1\n")
    assert main([f"--pairs={bad}", f"--output={tmp_path / 'o.yaml'}"]) == 2
    assert not (tmp_path / "o.yaml").exists()


def test_cli_debug_preset_reads_radians(tmp_path: Path, rng) -> None:
    model = _poses(rng, count=4)
    pairs = _write_pairs(tmp_path / "pairs.csv", model, model + 0.01)
    out = tmp_path / "debug.yaml"
    assert main(["--preset=debug", f"--pairs={pairs}", f"--output={out}"]) == 0
    offsets = [j.offset_rad for j in RobotDescription.from_yaml(out).joints]
    np.testing.assert_allclose(offsets, 0.01, atol=1e-9)
