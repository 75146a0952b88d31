from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from calibration.camera_info_io import save_camera_info
from calibration.handeye import (
    ALL_METHODS,
    HandEyeSample,
    calibrate_hand_eye,
)
from calibration.handeye_cli import main
from calibration.handeye_io import load_handeye_result, save_samples
from calibration.intrinsics import CalibrationError
from calibration.joint_space import model_to_real_rad, save_robot_description
from calibration.kinematics import ArmKinematics
from calibration.synthetic import TargetRenderer
from calibration.synthetic_handeye import make_scene
from calibration.transforms import invert_pose, rotation_angle_deg
from executor_core.robot_description import RobotDescription, default_robot_path

TARGET_ARGS = [
    "--target.kind=charuco",
    "--target.squares_x=5",
    "--target.squares_y=4",
    "--target.square_size_m=0.025",
    "--target.marker_size_m=0.016",
]


@pytest.fixture(scope="module")
def kinematics() -> ArmKinematics:
    return ArmKinematics(RobotDescription.from_yaml(default_robot_path()))


def _errors(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    delta = invert_pose(truth) @ estimate
    return float(np.linalg.norm(delta[:3, 3]) * 1000.0), rotation_angle_deg(delta[:3, :3])


@pytest.mark.parametrize("setup", ["eye_in_hand", "eye_on_base"])
def test_every_method_is_exact_on_exact_poses(
    setup, kinematics, handeye_camera, handeye_target, rng
) -> None:
    scene = make_scene(kinematics, handeye_camera, handeye_target, setup, 8, rng)
    samples = [
        HandEyeSample(kinematics.base_from_effector(q), view)
        for q, view in zip(scene.joint_positions_rad, scene.camera_from_target, strict=True)
    ]
    result = calibrate_hand_eye(samples, setup)
    assert {m.method for m in result.methods} == set(ALL_METHODS)
    for method in result.methods:
        mm, deg = _errors(method.transform, scene.truth)
        assert mm < 1e-3, method.method
        assert deg < 1e-3, method.method
        assert method.translation_rms_mm < 1e-3
    mm, deg = _errors(result.best.fixed_pose, scene.fixed_target)
    assert mm < 1e-3
    assert deg < 1e-3


def _write_rendered_samples(
    folder: Path, scene, camera, target, rng, joint_noise_deg: float = 0.05
) -> np.ndarray:
    """Render the scene (noise 2 grey levels, 0.5 px blur) and return noisy joint readings."""
    renderer = TargetRenderer(camera, target, supersample=2)
    names = []
    for i, view in enumerate(scene.camera_from_target):
        image = renderer.render(view, noise_sigma=2.0, blur_sigma_px=0.5, rng=rng)
        cv2.imwrite(str(folder / f"s{i:02d}.png"), image)
        names.append(f"s{i:02d}.png")
    # STS3215 encoders resolve 0.088 deg; readings carry that much noise.
    noisy = scene.joint_positions_rad + rng.normal(
        0.0, np.radians(joint_noise_deg), scene.joint_positions_rad.shape
    )
    save_samples(folder / "samples.yaml", noisy, names)
    return noisy


def test_cli_eye_in_hand_from_renders(
    tmp_path: Path, kinematics, handeye_camera, handeye_target, rng
) -> None:
    scene = make_scene(kinematics, handeye_camera, handeye_target, "eye_in_hand", 10, rng)
    _write_rendered_samples(tmp_path, scene, handeye_camera, handeye_target, rng)
    save_camera_info(handeye_camera, tmp_path / "camera.yaml")
    out = tmp_path / "result" / "handeye.yaml"
    argv = [
        f"--samples={tmp_path / 'samples.yaml'}",
        f"--camera_info={tmp_path / 'camera.yaml'}",
        "--setup=eye_in_hand",
        f"--output={out}",
        *TARGET_ARGS,
    ]
    assert main(argv) == 0
    tf = load_handeye_result(out)
    mm, deg = _errors(tf.parent_from_child, scene.truth)
    assert mm < 2.0, mm
    assert deg < 0.5, deg
    assert tf.parent_frame == "gripper_link"
    assert tf.child_frame == "camera_optical_frame"
    data = yaml.safe_load(out.read_text())
    assert data["parameters"]["calibration_type"] == "eye_in_hand"
    assert data["parameters"]["robot_base_frame"] == "base_link"
    assert set(data["transform"]["rotation"]) == {"x", "y", "z", "w"}
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert len(report["methods"]) == len(ALL_METHODS)
    assert report["static_transform_publisher"][-4:] == [
        "--frame-id", "gripper_link", "--child-frame-id", "camera_optical_frame",
    ]  # fmt: skip
    assert len(report["per_sample"]) == 10


def test_cli_eye_on_base_from_real_joint_readings(
    tmp_path: Path, kinematics, handeye_camera, handeye_target, rng
) -> None:
    # The arm reports degrees with its own zero/direction; the description knows them.
    description = kinematics.description
    joints = [
        j.__class__(**{**j.__dict__, "offset_rad": 0.1 * (i - 2), "direction": -1 if i % 2 else 1})
        for i, j in enumerate(description.joints)
    ]
    calibrated = description.__class__(description.name, tuple(joints), description.extra)
    robot = save_robot_description(calibrated, tmp_path / "robot.yaml", "test")
    scene = make_scene(kinematics, handeye_camera, handeye_target, "eye_on_base", 10, rng)
    model = _write_rendered_samples(tmp_path, scene, handeye_camera, handeye_target, rng)
    samples = yaml.safe_load((tmp_path / "samples.yaml").read_text())
    samples["joint_unit"] = "deg"
    samples["joints_are"] = "real"
    real_deg = np.degrees(model_to_real_rad(calibrated, model))
    for entry, q in zip(samples["samples"], real_deg, strict=True):
        entry["joint_positions"] = [float(v) for v in q]
    (tmp_path / "samples.yaml").write_text(yaml.safe_dump(samples))
    save_camera_info(handeye_camera, tmp_path / "camera.yaml")
    out = tmp_path / "handeye.yaml"
    argv = [
        f"--samples={tmp_path / 'samples.yaml'}",
        f"--camera_info={tmp_path / 'camera.yaml'}",
        f"--robot={robot}",
        "--setup=eye_on_base",
        f"--output={out}",
        "--preset=debug",  # the same board; Tsai and Park only
    ]
    assert main(argv) == 0
    tf = load_handeye_result(out)
    assert tf.parent_frame == "base_link"
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert {m["method"] for m in report["methods"]} == {"tsai", "park"}
    mm, deg = _errors(tf.parent_from_child, scene.truth)
    assert mm < 2.0, mm
    assert deg < 0.5, deg


def test_single_axis_motion_is_refused(kinematics) -> None:
    view = np.eye(4)
    view[2, 3] = 0.3
    samples = []
    for roll in np.linspace(-1.0, 1.0, 5):
        q = np.array([0.0, 0.3, 0.3, 0.5, roll, 0.0])
        samples.append(HandEyeSample(kinematics.base_from_effector(q), view))
    with pytest.raises(CalibrationError, match="same axis"):
        calibrate_hand_eye(samples, "eye_in_hand")


def test_too_few_or_still_samples_are_refused(kinematics) -> None:
    pose = kinematics.base_from_effector(np.zeros(6))
    with pytest.raises(CalibrationError, match="at least 3 samples"):
        calibrate_hand_eye([HandEyeSample(pose, np.eye(4))] * 2, "eye_in_hand")
    with pytest.raises(CalibrationError, match="barely rotates"):
        calibrate_hand_eye([HandEyeSample(pose, np.eye(4))] * 4, "eye_on_base")
    with pytest.raises(ValueError, match="setup"):
        calibrate_hand_eye([HandEyeSample(pose, np.eye(4))] * 4, "eye_on_table")


def test_cli_reports_missing_camera_info(tmp_path: Path, capsys) -> None:
    save_samples(tmp_path / "s.yaml", np.zeros((3, 6)), ["a.png", "b.png", "c.png"])
    assert main([f"--samples={tmp_path / 's.yaml'}"]) == 2
    assert "--camera_info is required" in capsys.readouterr().err


def test_cli_skips_unreadable_sample_images(tmp_path: Path, handeye_camera, caplog) -> None:
    save_samples(tmp_path / "s.yaml", np.zeros((3, 6)), ["a.png", "b.png", "c.png"])
    (tmp_path / "a.png").write_bytes(b"garbage")  # corrupt; b.png, c.png are missing
    save_camera_info(handeye_camera, tmp_path / "camera.yaml")
    argv = [f"--samples={tmp_path / 's.yaml'}", f"--camera_info={tmp_path / 'camera.yaml'}"]
    with caplog.at_level("WARNING", logger="calibration.image_sources"):
        assert main(argv) == 2
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "a.png" in warned
    assert "b.png" in warned


def test_cli_too_few_usable_samples_names_the_file(tmp_path: Path, handeye_camera, capsys) -> None:
    save_samples(tmp_path / "s.yaml", np.zeros((3, 6)), ["a.png", "b.png", "c.png"])
    (tmp_path / "a.png").write_bytes(b"garbage")
    save_camera_info(handeye_camera, tmp_path / "camera.yaml")
    argv = [f"--samples={tmp_path / 's.yaml'}", f"--camera_info={tmp_path / 'camera.yaml'}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith("executor-calibrate-handeye: error: ")
    assert str(tmp_path / "s.yaml") in err[-1]
    assert "0 usable sample(s) of 3, need at least 3" in err[-1]
    assert "'a.png'" in err[-1]
