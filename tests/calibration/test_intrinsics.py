from __future__ import annotations

import numpy as np
import pytest
from calib_truth import TRUE_DISTORTION, TRUE_FOCAL_PX

from calibration.intrinsics import CalibrationError, IntrinsicsOptions, calibrate_intrinsics
from calibration.synthetic import TargetRenderer, pose_matrix, random_board_poses
from calibration.targets import Detection, detect_target

OPTIONS = IntrinsicsOptions(radial_coefficients=2)


def _check_recovered(result, camera) -> None:
    k = result.camera_info.camera_matrix
    # Stated tolerances: focal 0.5 %, principal point 1 % of the image width.
    assert abs(k[0, 0] / TRUE_FOCAL_PX - 1) < 0.005, k
    assert abs(k[1, 1] / TRUE_FOCAL_PX - 1) < 0.005, k
    assert abs(k[0, 2] - camera.cx_px) < 3.2, k
    assert abs(k[1, 2] - camera.cy_px) < 3.2, k
    np.testing.assert_allclose(
        result.camera_info.distortion_coefficients[:2], TRUE_DISTORTION[:2], atol=0.02
    )
    assert result.rms_px < 0.3


def test_charuco_recovers_known_intrinsics(small_camera, charuco_target, charuco_images) -> None:
    detections = [detect_target(img, charuco_target) for img in charuco_images]
    assert sum(d is not None for d in detections) >= 8
    result = calibrate_intrinsics(detections, options=OPTIONS, camera_name="scene")
    _check_recovered(result, small_camera)
    assert result.per_image_rms_px.shape == (len(result.image_names),)
    assert np.all(result.per_image_max_px >= result.per_image_rms_px)
    assert "reprojection RMS" in result.report()
    # ROS mono convention: P is K of the rectified image, R is the identity.
    p = result.camera_info.projection_matrix
    assert p[0, 0] > 0
    assert np.all(p[:, 3] == 0)
    np.testing.assert_array_equal(result.camera_info.rectification_matrix, np.eye(3))


def test_checkerboard_recovers_known_intrinsics(small_camera, checker_target, rng) -> None:
    renderer = TargetRenderer(small_camera, checker_target, supersample=2)
    poses = random_board_poses(small_camera, checker_target, 7, rng)
    images = [renderer.render(p, noise_sigma=2.0, blur_sigma_px=0.5, rng=rng) for p in poses]
    detections = [detect_target(img, checker_target) for img in images]
    assert all(d is not None and d.num_points == 35 for d in detections)
    _check_recovered(calibrate_intrinsics(detections, options=OPTIONS), small_camera)


def test_no_corners_found_is_refused(small_camera, charuco_target) -> None:
    blank = np.full((240, 320), 128, np.uint8)
    assert detect_target(blank, charuco_target) is None
    with pytest.raises(CalibrationError, match="target not found"):
        calibrate_intrinsics([None, None, None, None], options=OPTIONS)


def test_one_image_is_refused(charuco_target, charuco_images) -> None:
    detection = detect_target(charuco_images[0], charuco_target)
    with pytest.raises(CalibrationError, match="1 usable views of 1 images"):
        calibrate_intrinsics([detection], options=OPTIONS)


def test_mismatched_sizes_are_refused(charuco_target, charuco_images) -> None:
    detections = [detect_target(img, charuco_target) for img in charuco_images[:4]]
    resized = Detection(
        detections[0].object_points_m, detections[0].image_points_px, (640, 480), detections[0].ids
    )
    with pytest.raises(CalibrationError, match=r"different sizes.*640x480"):
        calibrate_intrinsics([resized, *detections[1:]], options=OPTIONS)


def test_fronto_parallel_views_cannot_fix_focal(small_camera, charuco_target) -> None:
    # Parallel board planes only: focal length and distance trade off exactly.
    renderer = TargetRenderer(small_camera, charuco_target, supersample=1)
    poses = [
        pose_matrix(np.zeros(3), np.array([x, y, 0.3]))
        for x, y in [(-0.14, -0.11), (-0.07, -0.04), (-0.12, -0.05), (-0.08, -0.12)]
    ]
    detections = [detect_target(renderer.render(p), charuco_target) for p in poses]
    assert all(d is not None for d in detections)
    with pytest.raises(CalibrationError, match="same orientation"):
        calibrate_intrinsics(detections, options=IntrinsicsOptions(zero_tangential=True))


def test_collinear_views_are_rejected_with_reason(charuco_target, charuco_images) -> None:
    detections = [detect_target(img, charuco_target) for img in charuco_images]
    good = [d for d in detections if d is not None]
    row = good[0].ids < 6  # the first row of ChArUco corners only: one line
    line = Detection(
        good[0].object_points_m[row],
        good[0].image_points_px[row],
        good[0].image_size_px,
        good[0].ids[row],
    )
    result = calibrate_intrinsics([line, *good], options=OPTIONS)
    assert result.rejected[0][0] == "image_0000"
    assert "collinear" in result.rejected[0][1]
