"""Shared synthetic cameras and targets for the calibration tests (renders are cached)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from calib_truth import TRUE_DISTORTION, TRUE_FOCAL_PX, TRUE_PRINCIPAL_OFFSET_PX

from calibration.camera_info_io import CameraInfoData
from calibration.synthetic import TargetRenderer, make_camera_info, random_board_poses
from calibration.targets import TargetSpec

cv2.setNumThreads(1)


@pytest.fixture(scope="session")
def small_camera() -> CameraInfoData:
    return make_camera_info(320, 240, TRUE_FOCAL_PX, TRUE_DISTORTION, TRUE_PRINCIPAL_OFFSET_PX)


@pytest.fixture(scope="session")
def charuco_target() -> TargetSpec:
    return TargetSpec(
        kind="charuco", squares_x=7, squares_y=5, square_size_m=0.03, marker_size_m=0.018
    )


@pytest.fixture(scope="session")
def checker_target() -> TargetSpec:
    return TargetSpec(kind="checkerboard", squares_x=8, squares_y=6, square_size_m=0.03)


@pytest.fixture(scope="session")
def charuco_renderer(small_camera, charuco_target) -> TargetRenderer:
    return TargetRenderer(small_camera, charuco_target)


@pytest.fixture(scope="session")
def handeye_camera() -> CameraInfoData:
    return make_camera_info(480, 360, 390.0, (-0.05, 0.02, 0.0, 0.0, 0.0), (2.0, -1.0))


@pytest.fixture(scope="session")
def handeye_target() -> TargetSpec:
    return TargetSpec(
        kind="charuco", squares_x=5, squares_y=4, square_size_m=0.025, marker_size_m=0.016
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def charuco_images(small_camera, charuco_target, charuco_renderer) -> list[np.ndarray]:
    """10 views at realistic noise: sigma 2 grey levels, 0.5 px blur."""
    rng = np.random.default_rng(7)
    poses = random_board_poses(small_camera, charuco_target, 10, rng, fill_range=(0.5, 0.85))
    return [charuco_renderer.render(p, noise_sigma=2.0, blur_sigma_px=0.5, rng=rng) for p in poses]
