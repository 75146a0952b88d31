"""Camera intrinsics from detected planar targets (OpenCV's calibrateCamera underneath).

:func:`calibrate_intrinsics` checks that the views can determine the camera before it
solves (enough views, one image size, non-collinear points), solves, then checks that the
solution is determined (focal length uncertainty) and reports the RMS reprojection error
overall and per image. The result carries a ROS camera_info (:class:`CameraInfoData`)
whose projection matrix is computed the way ROS's camera_calibration does for a mono
camera (``getOptimalNewCameraMatrix`` with ``alpha``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from calibration.camera_info_io import CameraInfoData
from calibration.targets import Detection
from executor_core.config_cli import check_non_negative, check_positive

logger = logging.getLogger(__name__)

DistortionModel = Literal["plumb_bob", "rational_polynomial"]


class CalibrationError(ValueError):
    """The data cannot determine the calibration; the message says why and what to do."""


@dataclass(frozen=True)
class IntrinsicsOptions:
    distortion_model: DistortionModel = "plumb_bob"
    radial_coefficients: int = 3  # plumb_bob: 2 fixes k3 = 0 (ROS's default), 3 fits it
    fix_aspect_ratio: bool = False
    zero_tangential: bool = False
    alpha: float = 0.0  # 0: P keeps only valid pixels, 1: P keeps every source pixel
    min_images: int = 3
    max_rms_px: float = 2.0  # above this the board size or the detections are wrong
    max_focal_std_fraction: float = 0.01  # 1-sigma focal uncertainty allowed, fraction of f
    min_tilt_spread_deg: float = 10.0  # largest angle between two views' target normals

    def __post_init__(self) -> None:
        if self.distortion_model not in ("plumb_bob", "rational_polynomial"):
            raise ValueError(
                f"distortion_model must be plumb_bob or rational_polynomial, got "
                f"{self.distortion_model!r}"
            )
        if self.radial_coefficients not in (2, 3):
            raise ValueError(
                f"radial_coefficients must be 2 or 3, got {self.radial_coefficients!r}"
            )
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")
        if self.min_images < 3:
            raise ValueError(
                f"min_images must be >= 3 (a plane fixes 2 constraints per view), "
                f"got {self.min_images!r}"
            )
        check_positive(self, "max_rms_px", "max_focal_std_fraction")
        check_non_negative(self, "min_tilt_spread_deg")


@dataclass(frozen=True)
class IntrinsicsResult:
    camera_info: CameraInfoData
    rms_px: float  # RMS reprojection error over all points
    per_image_rms_px: np.ndarray  # (V,) RMS per used view
    per_image_max_px: np.ndarray  # (V,) worst point per used view
    image_names: tuple[str, ...]  # (V,) the used views
    rejected: tuple[tuple[str, str], ...]  # (name, reason) of views left out
    std_fx_fy_cx_cy_px: np.ndarray  # (4,) 1-sigma uncertainty from the solver
    camera_from_board: tuple[np.ndarray, ...]  # (V,) of (4, 4) poses, metres

    def report(self) -> str:
        k = self.camera_info.camera_matrix
        lines = [
            f"views used: {len(self.image_names)}, rejected: {len(self.rejected)}",
            f"fx={k[0, 0]:.3f} fy={k[1, 1]:.3f} cx={k[0, 2]:.3f} cy={k[1, 2]:.3f} px "
            f"(1-sigma {np.array2string(self.std_fx_fy_cx_cy_px, precision=3)})",
            f"distortion ({self.camera_info.distortion_model}): "
            f"{np.array2string(self.camera_info.distortion_coefficients, precision=5)}",
            f"reprojection RMS: {self.rms_px:.4f} px",
        ]
        for name, rms, worst in zip(
            self.image_names, self.per_image_rms_px, self.per_image_max_px, strict=True
        ):
            lines.append(f"  {name}: rms {rms:.4f} px, max {worst:.4f} px")
        for name, reason in self.rejected:
            lines.append(f"  {name}: rejected ({reason})")
        return "\n".join(lines)


def _flags(options: IntrinsicsOptions) -> int:
    flags = 0
    if options.distortion_model == "rational_polynomial":
        flags |= cv2.CALIB_RATIONAL_MODEL
    elif options.radial_coefficients == 2:
        flags |= cv2.CALIB_FIX_K3
    if options.fix_aspect_ratio:
        flags |= cv2.CALIB_FIX_ASPECT_RATIO
    if options.zero_tangential:
        flags |= cv2.CALIB_ZERO_TANGENT_DIST
    return flags


def _view_problem(detection: Detection) -> str | None:
    """Why one view cannot take part, or None."""
    if detection.num_points < 6:
        return f"only {detection.num_points} points (need 6)"
    board_xy = detection.object_points_m[:, :2].astype(np.float64)
    centred = board_xy - board_xy.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    if singular[1] < 1e-6 * max(singular[0], 1e-12):
        return "points are collinear on the board (a homography needs a 2-D spread)"
    return None


def calibrate_intrinsics(
    detections: list[Detection | None],
    names: list[str] | None = None,
    options: IntrinsicsOptions | None = None,
    camera_name: str = "camera",
) -> IntrinsicsResult:
    """Solve K and D from target detections (None = target not found in that image)."""
    options = options or IntrinsicsOptions()
    names = names if names is not None else [f"image_{i:04d}" for i in range(len(detections))]
    if len(names) != len(detections):
        raise ValueError(f"{len(names)} names for {len(detections)} detections")
    sizes = {d.image_size_px for d in detections if d is not None}
    if len(sizes) > 1:
        by_size: dict[tuple[int, int], list[str]] = {}
        for name, d in zip(names, detections, strict=True):
            if d is not None:
                by_size.setdefault(d.image_size_px, []).append(name)
        detail = "; ".join(f"{w}x{h}: {v[:3]}" for (w, h), v in by_size.items())
        raise CalibrationError(f"images have different sizes, one camera has one: {detail}")
    used: list[tuple[str, Detection]] = []
    rejected: list[tuple[str, str]] = []
    for name, d in zip(names, detections, strict=True):
        problem = "target not found" if d is None else _view_problem(d)
        if problem is None:
            used.append((name, d))
        else:
            rejected.append((name, problem))
    if len(used) < options.min_images:
        raise CalibrationError(
            f"{len(used)} usable views of {len(detections)} images, need at least "
            f"{options.min_images}; rejected: {rejected[:5]}"
            + (" ..." if len(rejected) > 5 else "")
        )
    (size,) = sizes
    object_points = [d.object_points_m.reshape(-1, 1, 3).astype(np.float32) for _, d in used]
    image_points = [d.image_points_px.reshape(-1, 1, 2).astype(np.float32) for _, d in used]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-12)
    rms, k, dist, rvecs, tvecs, std_intrinsics, _, _ = cv2.calibrateCameraExtended(
        object_points, image_points, size, None, None, flags=_flags(options), criteria=criteria
    )
    dist = dist.reshape(-1)
    dist = dist[:5] if options.distortion_model == "plumb_bob" else dist[:8]
    std = std_intrinsics.reshape(-1)[:4]
    # Zhang's method needs board planes that are not all parallel; then f and the board
    # distance trade off exactly, whatever the noise (so the solver's std can look fine).
    normals = np.array([cv2.Rodrigues(r)[0][:, 2] for r in rvecs])
    spread_deg = float(np.degrees(np.arccos(np.clip(np.min(normals @ normals.T), -1.0, 1.0))))
    if spread_deg < options.min_tilt_spread_deg:
        raise CalibrationError(
            f"all {len(used)} views show the target at nearly the same orientation (normals "
            f"within {spread_deg:.1f} deg < {options.min_tilt_spread_deg} deg), so the focal "
            f"length is not determined: tilt the target (about 30-45 degrees) in several views"
        )
    focal_std_fraction = float(np.max(std[:2] / np.array([k[0, 0], k[1, 1]])))
    if not np.isfinite(focal_std_fraction) or focal_std_fraction > options.max_focal_std_fraction:
        raise CalibrationError(
            f"focal length is not determined by these views (1-sigma {focal_std_fraction:.2%} "
            f"of f > {options.max_focal_std_fraction:.2%}): tilt the target (about 30-45 "
            f"degrees) and move it across the whole image"
        )
    if rms > options.max_rms_px:
        raise CalibrationError(
            f"reprojection RMS {rms:.3f} px > {options.max_rms_px} px: check the target "
            f"dimensions and that every image shows the same, flat target"
        )
    per_rms, per_max, poses = [], [], []
    for obj, img, rvec, tvec in zip(object_points, image_points, rvecs, tvecs, strict=True):
        proj = cv2.projectPoints(obj, rvec, tvec, k, dist)[0].reshape(-1, 2)
        err = np.linalg.norm(proj - img.reshape(-1, 2), axis=1)
        per_rms.append(float(np.sqrt(np.mean(err**2))))
        per_max.append(float(err.max()))
        pose = np.eye(4)
        pose[:3, :3] = cv2.Rodrigues(rvec)[0]
        pose[:3, 3] = tvec.reshape(3)
        poses.append(pose)
    new_k, _ = cv2.getOptimalNewCameraMatrix(k, dist, size, options.alpha)
    info = CameraInfoData(
        image_width_px=size[0],
        image_height_px=size[1],
        camera_name=camera_name,
        camera_matrix=k,
        distortion_model=options.distortion_model,
        distortion_coefficients=dist,
        rectification_matrix=np.eye(3),
        projection_matrix=np.hstack([new_k, np.zeros((3, 1))]),
    )
    logger.info("calibrated %s from %d views: rms %.4f px", camera_name, len(used), rms)
    return IntrinsicsResult(
        camera_info=info,
        rms_px=float(rms),
        per_image_rms_px=np.asarray(per_rms),
        per_image_max_px=np.asarray(per_max),
        image_names=tuple(n for n, _ in used),
        rejected=tuple(rejected),
        std_fx_fy_cx_cy_px=np.asarray(std, dtype=np.float64),
        camera_from_board=tuple(poses),
    )
