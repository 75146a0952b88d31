"""Rectified (undistorted) images from a camera_info, as ROS's image_proc computes them.

The maps are built once from K, D, R and P (``initUndistortRectifyMap``), so rectifying
a frame is one ``remap``. The output has the projection matrix P's intrinsics, the same
as ROS's ``image_rect``; the executor node uses this when configured to.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from calibration.camera_info_io import CameraInfoData, load_camera_info

logger = logging.getLogger(__name__)


class Rectifier:
    """Rectify frames of one camera; refuses frames of another size."""

    def __init__(self, camera: CameraInfoData, interpolation: int = cv2.INTER_LINEAR) -> None:
        self.camera = camera
        self.interpolation = interpolation
        size = camera.image_size_px
        new_k = camera.projection_matrix[:, :3]
        if camera.distortion_model == "equidistant":
            self._map_x, self._map_y = cv2.fisheye.initUndistortRectifyMap(
                camera.camera_matrix, camera.distortion_coefficients,
                camera.rectification_matrix, new_k, size, cv2.CV_32FC1,
            )  # fmt: skip
        else:
            self._map_x, self._map_y = cv2.initUndistortRectifyMap(
                camera.camera_matrix, camera.distortion_coefficients,
                camera.rectification_matrix, new_k, size, cv2.CV_32FC1,
            )  # fmt: skip

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W) or (H, W, C) image of the calibrated size -> rectified, same shape."""
        height, width = image.shape[:2]
        if (width, height) != self.camera.image_size_px:
            raise ValueError(
                f"image is {width}x{height} but {self.camera.camera_name!r} was calibrated at "
                f"{self.camera.image_size_px[0]}x{self.camera.image_size_px[1]}"
            )
        return cv2.remap(
            image, self._map_x, self._map_y, self.interpolation, borderMode=cv2.BORDER_CONSTANT
        )


def rectifier_from_parameters(camera_info_path: str, rectify: bool) -> Rectifier | None:
    """The rectifier a node's ``rectify`` / ``camera_info_path`` parameters ask for.

    ``rectify`` false: None (a set ``camera_info_path`` is then logged as unused);
    true without a path: a ValueError naming the missing parameter.
    """
    if not rectify:
        if camera_info_path:
            logger.warning(
                "camera_info_path %r is set but rectify is false: frames reach the models "
                "unrectified",
                camera_info_path,
            )
        return None
    if not camera_info_path:
        raise ValueError("rectify is true but camera_info_path is empty")
    rectifier = Rectifier(load_camera_info(camera_info_path))
    cam = rectifier.camera
    logger.info(
        "rectifying %dx%d frames (%s) with %s",
        cam.image_width_px,
        cam.image_height_px,
        cam.distortion_model,
        camera_info_path,
    )
    return rectifier
