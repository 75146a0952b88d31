"""Hand-eye calibration (eye-in-hand and eye-on-base) with OpenCV's solvers, compared.

Each sample pairs the robot pose ``base_from_effector`` (forward kinematics of the joint
state) with the target pose ``camera_from_target`` (PnP on the image). The unknown is

- eye-in-hand (camera on the gripper): ``effector_from_camera``; the target is fixed in
  the base frame, so ``base_from_effector_i @ X @ camera_from_target_i`` is constant;
- eye-on-base (camera fixed, target on the gripper): ``base_from_camera``; the target is
  fixed on the effector, so ``inv(base_from_effector_i) @ X @ camera_from_target_i`` is
  constant.

Every solver (Tsai, Park, Horaud, Andreff, Daniilidis for AX = XB; Shah and Li for the
joint AX = ZB) runs; each is scored by how constant that chain is (RMS translation in mm
and rotation in degrees around its mean) and the lowest translation residual wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from calibration.camera_info_io import CameraInfoData
from calibration.intrinsics import CalibrationError
from calibration.targets import Detection
from calibration.transforms import invert_pose, make_pose, mean_pose, rotation_angle_deg

logger = logging.getLogger(__name__)

Setup = Literal["eye_in_hand", "eye_on_base"]
MIN_SAMPLES = 3  # a hand-eye rotation needs two motions about different axes

AXXB_METHODS: dict[str, int] = {
    "tsai": cv2.CALIB_HAND_EYE_TSAI,
    "park": cv2.CALIB_HAND_EYE_PARK,
    "horaud": cv2.CALIB_HAND_EYE_HORAUD,
    "andreff": cv2.CALIB_HAND_EYE_ANDREFF,
    "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
AXZB_METHODS: dict[str, int] = {
    "shah": cv2.CALIB_ROBOT_WORLD_HAND_EYE_SHAH,
    "li": cv2.CALIB_ROBOT_WORLD_HAND_EYE_LI,
}
ALL_METHODS: tuple[str, ...] = (*AXXB_METHODS, *AXZB_METHODS)


@dataclass(frozen=True)
class HandEyeSample:
    base_from_effector: np.ndarray  # (4, 4) metres, forward kinematics
    camera_from_target: np.ndarray  # (4, 4) metres, camera optical frame
    name: str = ""


@dataclass(frozen=True)
class MethodResult:
    method: str
    transform: np.ndarray  # (4, 4) effector_from_camera or base_from_camera, metres
    fixed_pose: np.ndarray  # (4, 4) base_from_target or effector_from_target, the mean
    translation_residuals_mm: np.ndarray  # (N,) per sample, distance to the mean
    rotation_residuals_deg: np.ndarray  # (N,) per sample, angle to the mean

    @property
    def translation_rms_mm(self) -> float:
        return float(np.sqrt(np.mean(self.translation_residuals_mm**2)))

    @property
    def rotation_rms_deg(self) -> float:
        return float(np.sqrt(np.mean(self.rotation_residuals_deg**2)))


@dataclass(frozen=True)
class HandEyeResult:
    setup: Setup
    best: MethodResult
    methods: tuple[MethodResult, ...]
    sample_names: tuple[str, ...]

    def report(self) -> str:
        kind = "effector_from_camera" if self.setup == "eye_in_hand" else "base_from_camera"
        t = self.best.transform[:3, 3] * 1000.0
        rvec_deg = np.degrees(cv2.Rodrigues(self.best.transform[:3, :3])[0].ravel())
        lines = [
            f"{self.setup}: {len(self.sample_names)} samples, best method {self.best.method}",
            f"{kind} translation [mm]: {np.array2string(t, precision=2)}",
            f"{kind} rotation vector [deg]: {np.array2string(rvec_deg, precision=3)}",
            "method        trans RMS [mm]   rot RMS [deg]",
        ]
        for m in self.methods:
            lines.append(
                f"  {m.method:<12}{m.translation_rms_mm:>12.3f}{m.rotation_rms_deg:>16.4f}"
            )
        lines.append("per sample (best): name, translation [mm], rotation [deg]")
        for name, tr, rot in zip(
            self.sample_names,
            self.best.translation_residuals_mm,
            self.best.rotation_residuals_deg,
            strict=True,
        ):
            lines.append(f"  {name}: {tr:.3f} mm, {rot:.4f} deg")
        return "\n".join(lines)


def target_pose_from_detection(
    detection: Detection, camera: CameraInfoData, max_rms_px: float = 2.0
) -> np.ndarray:
    """camera_from_target (4, 4) by PnP (IPPE for a plane, then Levenberg-Marquardt)."""
    if camera.image_size_px != detection.image_size_px:
        raise CalibrationError(
            f"image is {detection.image_size_px} but camera_info is for {camera.image_size_px}"
        )
    if camera.distortion_model == "equidistant":
        raise CalibrationError("equidistant (fisheye) camera_info is not supported for PnP here")
    obj = detection.object_points_m.astype(np.float64)
    img = detection.image_points_px.astype(np.float64)
    k, d = camera.camera_matrix, camera.distortion_coefficients
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, d, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise CalibrationError(f"PnP failed on {detection.num_points} points")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, k, d, rvec, tvec)
    proj = cv2.projectPoints(obj, rvec, tvec, k, d)[0].reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((proj - img) ** 2, axis=1))))
    if rms > max_rms_px:
        raise CalibrationError(
            f"target pose reprojection RMS {rms:.3f} px > {max_rms_px} px (wrong camera_info "
            f"or target size?)"
        )
    return make_pose(rvec, tvec)


def check_motion_diversity(samples: list[HandEyeSample], min_angle_deg: float = 10.0) -> None:
    """Refuse sample sets whose robot motions cannot determine the rotation."""
    if len(samples) < MIN_SAMPLES:
        raise CalibrationError(
            f"hand-eye needs at least {MIN_SAMPLES} samples (5+ advised), got {len(samples)}"
        )
    first = samples[0].base_from_effector
    axes, angles = [], []
    for sample in samples[1:]:
        relative = invert_pose(first) @ sample.base_from_effector
        angle = rotation_angle_deg(relative[:3, :3])
        angles.append(angle)
        if angle > 1.0:
            rvec = cv2.Rodrigues(relative[:3, :3])[0].ravel()
            axes.append(rvec / np.linalg.norm(rvec))
    if not angles or max(angles) < min_angle_deg:
        raise CalibrationError(
            f"the gripper barely rotates between samples (largest {max(angles, default=0):.1f} "
            f"deg < {min_angle_deg} deg): rotate the wrist between poses"
        )
    singular = np.linalg.svd(np.asarray(axes), compute_uv=False) if len(axes) >= 2 else [1, 0]
    if singular[1] < 0.1 * singular[0]:
        raise CalibrationError(
            "every robot motion rotates about the same axis; the translation along it is "
            "undetermined: rotate about at least two different axes (e.g. wrist flex and roll)"
        )


def _solve(method: str, robot: list[np.ndarray], camera: list[np.ndarray]) -> np.ndarray:
    """X for motions in AX = XB form: robot[i] = gripper->base analogue, camera[i] =
    target->camera. Returns the camera->gripper analogue (4, 4)."""
    r_g = [p[:3, :3] for p in robot]
    t_g = [p[:3, 3] for p in robot]
    r_c = [p[:3, :3] for p in camera]
    t_c = [p[:3, 3] for p in camera]
    if method in AXXB_METHODS:
        rotation, translation = cv2.calibrateHandEye(
            r_g, t_g, r_c, t_c, method=AXXB_METHODS[method]
        )
        return make_pose(rotation, translation)
    # calibrateRobotWorldHandEye wants base->gripper and returns gripper->camera.
    inv_robot = [invert_pose(p) for p in robot]
    _, _, rotation, translation = cv2.calibrateRobotWorldHandEye(
        r_c,
        t_c,
        [p[:3, :3] for p in inv_robot],
        [p[:3, 3] for p in inv_robot],
        method=AXZB_METHODS[method],
    )
    return invert_pose(make_pose(rotation, translation))


def _evaluate(
    method: str, transform: np.ndarray, samples: list[HandEyeSample], setup: Setup
) -> MethodResult:
    chain = []
    for s in samples:
        robot = (
            s.base_from_effector if setup == "eye_in_hand" else invert_pose(s.base_from_effector)
        )
        chain.append(robot @ transform @ s.camera_from_target)
    fixed = mean_pose(chain)
    inv_fixed = invert_pose(fixed)
    trans = np.array([np.linalg.norm(c[:3, 3] - fixed[:3, 3]) * 1000.0 for c in chain])
    rot = np.array([rotation_angle_deg((inv_fixed @ c)[:3, :3]) for c in chain])
    return MethodResult(method, transform, fixed, trans, rot)


def calibrate_hand_eye(
    samples: list[HandEyeSample], setup: Setup, methods: tuple[str, ...] = ALL_METHODS
) -> HandEyeResult:
    """Run every requested solver, score each, return them all with the best first."""
    if setup not in ("eye_in_hand", "eye_on_base"):
        raise ValueError(f"setup must be eye_in_hand or eye_on_base, got {setup!r}")
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown hand-eye methods {unknown or methods!r}; known: {ALL_METHODS}")
    check_motion_diversity(samples)
    # Eye-on-base is eye-in-hand with the robot poses inverted (base and effector swap).
    robot = [
        s.base_from_effector if setup == "eye_in_hand" else invert_pose(s.base_from_effector)
        for s in samples
    ]
    camera = [s.camera_from_target for s in samples]
    results = []
    for method in methods:
        try:
            transform = _solve(method, robot, camera)
        except cv2.error as exc:
            logger.warning("hand-eye method %s failed: %s", method, exc)
            continue
        if not np.all(np.isfinite(transform)):
            logger.warning("hand-eye method %s returned non-finite values", method)
            continue
        results.append(_evaluate(method, transform, samples, setup))
    if not results:
        raise CalibrationError(f"every hand-eye method failed on {len(samples)} samples")
    results.sort(key=lambda r: r.translation_rms_mm)
    names = tuple(s.name or f"sample_{i:03d}" for i, s in enumerate(samples))
    logger.info(
        "hand-eye %s: best %s, %.3f mm / %.4f deg RMS",
        setup,
        results[0].method,
        results[0].translation_rms_mm,
        results[0].rotation_rms_deg,
    )
    return HandEyeResult(setup, results[0], tuple(results), names)
