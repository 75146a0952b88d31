"""Exact synthetic renders of calibration targets through a known distorted camera.

Tests and benchmarks need images whose true intrinsics, distortion and target pose are
known. Every output pixel is traced back through the camera model: the pixel (at several
sub-pixel offsets, for anti-aliasing) is undistorted to a normalised ray, the ray meets the
board plane, and the board texture is sampled there. So the image is exactly what the
pinhole + ``plumb_bob`` model predicts, up to the added noise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.camera_info_io import CameraInfoData
from calibration.targets import TargetSpec

logger = logging.getLogger(__name__)

_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


def make_camera_info(
    width_px: int,
    height_px: int,
    focal_px: float,
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0),
    principal_offset_px: tuple[float, float] = (0.0, 0.0),
    name: str = "synthetic",
) -> CameraInfoData:
    """A plumb_bob camera with square pixels, principal point near the image centre."""
    cx = (width_px - 1) / 2.0 + principal_offset_px[0]
    cy = (height_px - 1) / 2.0 + principal_offset_px[1]
    k = np.array([[focal_px, 0.0, cx], [0.0, focal_px, cy], [0.0, 0.0, 1.0]])
    return CameraInfoData(
        image_width_px=width_px,
        image_height_px=height_px,
        camera_name=name,
        camera_matrix=k,
        distortion_model="plumb_bob",
        distortion_coefficients=np.asarray(distortion, dtype=np.float64),
        rectification_matrix=np.eye(3),
        projection_matrix=np.hstack([k, np.zeros((3, 1))]),
    )


def pose_matrix(rotation: np.ndarray, translation_m: np.ndarray) -> np.ndarray:
    """(4, 4) homogeneous transform from a (3, 3) rotation or (3,) rotation vector."""
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape in ((3,), (3, 1)):
        rotation = cv2.Rodrigues(rotation.reshape(3))[0]
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = np.asarray(translation_m, dtype=np.float64).reshape(3)
    return out


@dataclass
class TargetRenderer:
    """Renders one target through one camera; the per-pixel rays are computed once."""

    camera: CameraInfoData
    target: TargetSpec
    supersample: int = 3
    px_per_square: int = 48
    background: int = 110

    def __post_init__(self) -> None:
        if self.supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {self.supersample!r}")
        width, height = self.camera.image_size_px
        v, u = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width), indexing="ij")
        pixels = np.stack([u, v], -1).reshape(-1, 2)  # (H*W, 2) pixel centres
        k, d = self.camera.camera_matrix, self.camera.distortion_coefficients
        rays = cv2.undistortPointsIter(
            pixels.reshape(-1, 1, 2), k, d, None, None, _UNDISTORT_CRITERIA
        ).reshape(-1, 2)
        # Outside the region where the distortion polynomial is invertible the iteration
        # converges to a wrong ray; project back and drop pixels that do not return.
        back = cv2.projectPoints(
            np.hstack([rays, np.ones((rays.shape[0], 1))]), np.zeros(3), np.zeros(3), k, d
        )[0].reshape(-1, 2)
        rays[np.linalg.norm(back - pixels, axis=1) > 1e-3] = np.nan
        # Sub-pixel samples from the local Jacobian of the (smooth) ray field: exact to
        # second order, and 9x cheaper than undistorting every sample.
        grid = rays.reshape(height, width, 2)
        d_dv, d_du = np.gradient(grid, axis=(0, 1))
        s = self.supersample
        offsets = (np.arange(s) + 0.5) / s - 0.5
        rays = np.concatenate(
            [(grid + d_du * dx + d_dv * dy).reshape(-1, 2) for dy in offsets for dx in offsets]
        )  # (S*S*H*W, 2)
        # float32 is ample (1e-4 texture px); separate contiguous x, y rays because a
        # tall (N, 3) @ (3, 3) BLAS product is far slower than three fused multiply-adds.
        self._ray_x = np.ascontiguousarray(rays[:, 0], dtype=np.float32)
        self._ray_y = np.ascontiguousarray(rays[:, 1], dtype=np.float32)
        texture = self.target.texture(self.px_per_square)
        margin = self.px_per_square  # the white paper around the printed squares
        self._texture = cv2.copyMakeBorder(
            texture, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255
        ).astype(np.float32)
        self._px_per_m = self.px_per_square / self.target.square_size_m
        self._origin_px = margin + self.target.texture_points_m() * self._px_per_m

    def render(
        self,
        camera_from_board: np.ndarray,
        noise_sigma: float = 0.0,
        blur_sigma_px: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """(H, W) uint8 image of the board at ``camera_from_board`` (4, 4), metres."""
        width, height = self.camera.image_size_px
        r, t = camera_from_board[:3, :3], camera_from_board[:3, 3]
        homography = np.column_stack([r[:, 0], r[:, 1], t])  # board (x, y, 1) -> ray
        inv = np.linalg.inv(homography).astype(np.float32)  # ray (x, y, 1) -> board
        bx, by, bw = (
            inv[i, 0] * self._ray_x + inv[i, 1] * self._ray_y + inv[i, 2] for i in range(3)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            tex_x = bx / bw * np.float32(self._px_per_m) + np.float32(self._origin_px[0] - 0.5)
            tex_y = by / bw * np.float32(self._px_per_m) + np.float32(self._origin_px[1] - 0.5)
        # Rays meeting the plane behind the camera, or invalid rays, see the background.
        outside = ~(bw > 0) | ~np.isfinite(tex_x) | ~np.isfinite(tex_y)
        tex_x[outside] = -1e6
        tex_y[outside] = -1e6
        map_x = tex_x.reshape(-1, width)
        map_y = tex_y.reshape(-1, width)
        sampled = cv2.remap(
            self._texture,
            map_x,
            map_y,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=float(self.background),
        )
        image = sampled.reshape(-1, height, width).mean(axis=0)
        if blur_sigma_px > 0:
            image = cv2.GaussianBlur(image, (0, 0), blur_sigma_px)
        if noise_sigma > 0:
            rng = rng or np.random.default_rng(0)
            image = image + rng.normal(0.0, noise_sigma, image.shape)
        # Saturation is what a real sensor does with noise past black/white.
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def board_corners_visible(
    camera: CameraInfoData, target: TargetSpec, camera_from_board: np.ndarray, margin_px: float
) -> bool:
    """Whether the whole printed board (its outer corners) projects inside the image."""
    w_m, h_m = target.size_m
    origin = -target.texture_points_m()
    outline = np.array(
        [[0, 0, 0], [w_m, 0, 0], [w_m, h_m, 0], [0, h_m, 0]], dtype=np.float64
    ) + np.array([origin[0], origin[1], 0.0])
    points = outline @ camera_from_board[:3, :3].T + camera_from_board[:3, 3]
    if np.any(points[:, 2] <= 0.05):
        return False
    px = cv2.projectPoints(
        points, np.zeros(3), np.zeros(3), camera.camera_matrix, camera.distortion_coefficients
    )[0].reshape(-1, 2)
    width, height = camera.image_size_px
    return bool(
        np.all(px[:, 0] > margin_px)
        and np.all(px[:, 0] < width - 1 - margin_px)
        and np.all(px[:, 1] > margin_px)
        and np.all(px[:, 1] < height - 1 - margin_px)
    )


def random_board_poses(
    camera: CameraInfoData,
    target: TargetSpec,
    count: int,
    rng: np.random.Generator,
    max_tilt_deg: float = 40.0,
    fill_range: tuple[float, float] = (0.35, 0.75),
    margin_px: float = 8.0,
) -> list[np.ndarray]:
    """``count`` camera_from_board poses (4, 4) with the whole board in view, varied
    position, size and tilt like a person waving a board in front of a camera."""
    width, height = camera.image_size_px
    w_m, h_m = target.size_m
    poses: list[np.ndarray] = []
    for _ in range(200 * count):
        if len(poses) == count:
            break
        fill = rng.uniform(*fill_range)
        depth_m = camera.fx_px * w_m / (fill * width)
        u = rng.uniform(0.3, 0.7) * width
        v = rng.uniform(0.3, 0.7) * height
        ray = np.linalg.solve(camera.camera_matrix, np.array([u, v, 1.0]))
        centre = ray * depth_m
        tilt = np.deg2rad(rng.uniform(-max_tilt_deg, max_tilt_deg, size=2))
        roll = np.deg2rad(rng.uniform(-20.0, 20.0))
        rot = (
            cv2.Rodrigues(np.array([tilt[0], 0.0, 0.0]))[0]
            @ cv2.Rodrigues(np.array([0.0, tilt[1], 0.0]))[0]
            @ cv2.Rodrigues(np.array([0.0, 0.0, roll]))[0]
        )
        middle = np.array([w_m / 2, h_m / 2, 0.0]) - np.append(target.texture_points_m(), 0.0)
        pose = pose_matrix(rot, centre - rot @ middle)
        if board_corners_visible(camera, target, pose, margin_px):
            poses.append(pose)
    if len(poses) < count:
        raise RuntimeError(
            f"could only place {len(poses)} of {count} boards in a {width}x{height} view"
        )
    return poses
