from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.handeye import HandEyeResult, MethodResult
from calibration.handeye_io import (
    HandEyeFrames,
    load_handeye_result,
    load_samples,
    save_handeye_result,
)
from calibration.rectify import Rectifier
from calibration.synthetic import TargetRenderer, pose_matrix
from calibration.targets import detect_target
from calibration.transforms import (
    make_pose,
    mean_pose,
    quaternion_xyzw_from_rotation,
    rotation_angle_deg,
    rotation_from_quaternion_xyzw,
)


def test_rectified_image_follows_the_projection_matrix(small_camera, charuco_target) -> None:
    renderer = TargetRenderer(small_camera, charuco_target, supersample=2)
    pose = pose_matrix(np.array([0.2, -0.3, 0.1]), np.array([-0.1, -0.07, 0.28]))
    rectified = Rectifier(small_camera)(renderer.render(pose))
    detection = detect_target(rectified, charuco_target)
    assert detection is not None
    # In the rectified image the corners follow the pinhole model with P, no distortion.
    p = small_camera.projection_matrix
    expected = cv2.projectPoints(
        detection.object_points_m.astype(np.float64), cv2.Rodrigues(pose[:3, :3])[0],
        pose[:3, 3], p[:, :3], None,
    )[0].reshape(-1, 2)  # fmt: skip
    error = np.linalg.norm(detection.image_points_px - expected, axis=1)
    assert np.median(error) < 0.2
    with pytest.raises(ValueError, match="calibrated at 320x240"):
        Rectifier(small_camera)(np.zeros((480, 640), np.uint8))


def test_quaternions_round_trip_and_mean_pose(rng) -> None:
    for _ in range(200):
        rotation = cv2.Rodrigues(rng.normal(size=3) * 2.0)[0]
        q = quaternion_xyzw_from_rotation(rotation)
        assert q[3] >= 0
        np.testing.assert_allclose(rotation_from_quaternion_xyzw(q), rotation, atol=1e-12)
    base = make_pose(np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0]))
    jitter = [base @ make_pose(rng.normal(0, 1e-3, 3), rng.normal(0, 1e-3, 3)) for _ in range(50)]
    mean = mean_pose(jitter)
    assert rotation_angle_deg(mean[:3, :3].T @ base[:3, :3]) < 0.05
    with pytest.raises(ValueError, match="non-zero quaternion"):
        rotation_from_quaternion_xyzw(np.zeros(4))


def test_handeye_result_file_round_trip(tmp_path: Path) -> None:
    transform = make_pose(np.array([0.3, -1.2, 0.4]), np.array([0.04, -0.01, 0.02]))
    method = MethodResult("park", transform, np.eye(4), np.zeros(3), np.zeros(3))
    result = HandEyeResult("eye_in_hand", method, (method,), ("a", "b", "c"))
    path = save_handeye_result(result, tmp_path / "eih.yaml", HandEyeFrames(), "bench")
    tf = load_handeye_result(path)
    np.testing.assert_allclose(tf.parent_from_child, transform, atol=1e-12)
    assert (tf.parent_frame, tf.child_frame) == ("gripper_link", "camera_optical_frame")
    args = tf.publisher_args()
    assert args[args.index("--x") + 1] == "0.04"
    (tmp_path / "bad.yaml").write_text("transform: {}\n")
    with pytest.raises(ValueError, match="not an easy_handeye2-style"):
        load_handeye_result(tmp_path / "bad.yaml")


def test_samples_file_needs_image_or_pose(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("samples:\n  - joint_positions: [0, 0, 0, 0, 0, 0]\n")
    with pytest.raises(ValueError, match="exactly one of image, camera_from_target"):
        load_samples(path)
    path.write_text(
        "joint_unit: deg\nsamples:\n  - joint_positions: [0, 0, 0, 0, 0, 0]\n"
        "    camera_from_target: {translation_m: [0, 0, 0.3], rotation_xyzw: [0, 0, 0, 2]}\n"
    )
    sample = load_samples(path).samples[0]
    np.testing.assert_allclose(sample.camera_from_target[:3, :3], np.eye(3))
    assert sample.camera_from_target[2, 3] == 0.3
