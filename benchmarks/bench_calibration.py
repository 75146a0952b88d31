"""Calibration accuracy and speed vs. noise, on exact synthetic renders.

    .venv/bin/python benchmarks/bench_calibration.py            # full table (~2-4 min)
    .venv/bin/python benchmarks/bench_calibration.py --preset debug

For each noise level (image noise sigma in grey levels, with 0.5 px blur; joint reading
noise sigma in degrees) and seed: intrinsics from ChArUco and checkerboard renders of a
640x480 webcam-like lens (focal / principal point error in %), and hand-eye (eye-in-hand
and eye-on-base, SO-101 kinematics) from ChArUco renders (translation mm, rotation deg of
the best method). Prints the mean and worst over seeds, and the time per calibration
(detection + solve; rendering excluded).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.handeye import HandEyeSample, calibrate_hand_eye, target_pose_from_detection
from calibration.intrinsics import IntrinsicsOptions, calibrate_intrinsics
from calibration.kinematics import ArmKinematics
from calibration.synthetic import TargetRenderer, make_camera_info, random_board_poses
from calibration.synthetic_handeye import make_scene
from calibration.targets import TargetSpec, detect_target
from calibration.transforms import invert_pose, rotation_angle_deg
from executor_core.config_cli import parse_config
from executor_core.robot_description import RobotDescription, default_robot_path


@dataclass(frozen=True)
class BenchConfig:
    pixel_noise: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0)  # grey levels, sigma
    joint_noise_deg: tuple[float, ...] = (0.0, 0.025, 0.05, 0.1, 0.2)  # per pixel level
    seeds: int = 3
    intrinsics_views: int = 15
    handeye_samples: int = 15
    width_px: int = 640
    height_px: int = 480

    def __post_init__(self) -> None:
        if len(self.pixel_noise) != len(self.joint_noise_deg):
            raise ValueError(
                f"pixel_noise {self.pixel_noise!r} and joint_noise_deg "
                f"{self.joint_noise_deg!r} must pair up"
            )
        if self.seeds < 1 or self.intrinsics_views < 3 or self.handeye_samples < 3:
            raise ValueError(f"seeds >= 1, views/samples >= 3, got {self!r}")


PRESETS = {
    "debug": BenchConfig(
        pixel_noise=(2.0,),
        joint_noise_deg=(0.05,),
        seeds=1,
        intrinsics_views=6,
        handeye_samples=8,
        width_px=480,
        height_px=360,
    ),
}


def bench_intrinsics(cfg: BenchConfig, kind: str, noise: float, seed: int) -> tuple:
    focal = 0.8 * cfg.width_px
    camera = make_camera_info(
        cfg.width_px, cfg.height_px, focal, (-0.25, 0.08, 0.001, -0.0005, 0.0), (6.0, -4.0)
    )
    if kind == "charuco":
        target = TargetSpec("charuco", 7, 5, 0.03, 0.018)
    else:
        target = TargetSpec("checkerboard", 9, 7, 0.025)
    rng = np.random.default_rng(seed)
    renderer = TargetRenderer(camera, target)
    poses = random_board_poses(camera, target, cfg.intrinsics_views, rng, fill_range=(0.45, 0.8))
    images = [renderer.render(p, noise_sigma=noise, blur_sigma_px=0.5, rng=rng) for p in poses]
    start = time.perf_counter()
    detections = [detect_target(img, target) for img in images]
    result = calibrate_intrinsics(detections, options=IntrinsicsOptions(radial_coefficients=2))
    elapsed = time.perf_counter() - start
    k = result.camera_info.camera_matrix
    focal_err = 100 * max(abs(k[0, 0] / focal - 1), abs(k[1, 1] / focal - 1))
    pp_err = 100 * max(abs(k[0, 2] / camera.cx_px - 1), abs(k[1, 2] / camera.cy_px - 1))
    return focal_err, pp_err, result.rms_px, elapsed


def bench_handeye(
    cfg: BenchConfig, kinematics: ArmKinematics, setup: str, noise: float, joint_deg: float,
    seed: int,
) -> tuple:  # fmt: skip
    camera = make_camera_info(
        cfg.width_px, cfg.height_px, 0.8 * cfg.width_px, (-0.05, 0.02, 0.0, 0.0, 0.0)
    )
    target = TargetSpec("charuco", 5, 4, 0.025, 0.016)
    rng = np.random.default_rng(seed)
    scene = make_scene(kinematics, camera, target, setup, cfg.handeye_samples, rng)
    renderer = TargetRenderer(camera, target)
    images = [
        renderer.render(v, noise_sigma=noise, blur_sigma_px=0.5, rng=rng)
        for v in scene.camera_from_target
    ]
    joints = scene.joint_positions_rad + rng.normal(
        0, np.radians(joint_deg) if joint_deg > 0 else 0.0, scene.joint_positions_rad.shape
    )
    start = time.perf_counter()
    samples = []
    for image, q in zip(images, joints, strict=True):
        detection = detect_target(image, target)
        if detection is not None:
            pose = target_pose_from_detection(detection, camera)
            samples.append(HandEyeSample(kinematics.base_from_effector(q), pose))
    result = calibrate_hand_eye(samples, setup)
    elapsed = time.perf_counter() - start
    delta = invert_pose(scene.truth) @ result.best.transform
    return np.linalg.norm(delta[:3, 3]) * 1000, rotation_angle_deg(delta[:3, :3]), elapsed


def main(argv: list[str] | None = None) -> int:
    cv2.setNumThreads(1)
    cfg = parse_config(BenchConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    kinematics = ArmKinematics(RobotDescription.from_yaml(default_robot_path()))
    print(f"{cfg.width_px}x{cfg.height_px}, {cfg.seeds} seeds; mean / worst over seeds")
    print("\nintrinsics (blur 0.5 px), errors in % of the true value, radial k1 k2 fitted")
    print(f"{'target':<13}{'noise':>6}{'focal %':>16}{'principal pt %':>18}{'RMS px':>9}"
          f"{'time s':>9}")  # fmt: skip
    for kind in ("charuco", "checkerboard"):
        for noise in cfg.pixel_noise:
            rows = np.array([bench_intrinsics(cfg, kind, noise, s) for s in range(cfg.seeds)])
            print(
                f"{kind:<13}{noise:>6.1f}{rows[:, 0].mean():>9.3f} /{rows[:, 0].max():>6.3f}"
                f"{rows[:, 1].mean():>11.3f} /{rows[:, 1].max():>6.3f}"
                f"{rows[:, 2].mean():>9.3f}{rows[:, 3].mean():>9.2f}"
            )
    print("\nhand-eye, best method; noise = image sigma (grey levels) / joint sigma (deg)")
    print(f"{'setup':<13}{'noise':>12}{'translation mm':>18}{'rotation deg':>16}{'time s':>9}")
    for setup in ("eye_in_hand", "eye_on_base"):
        for noise, joint_deg in zip(cfg.pixel_noise, cfg.joint_noise_deg, strict=True):
            rows = np.array([
                bench_handeye(cfg, kinematics, setup, noise, joint_deg, s)
                for s in range(cfg.seeds)
            ])  # fmt: skip
            print(
                f"{setup:<13}{noise:>6.1f}/{joint_deg:<5.3f}"
                f"{rows[:, 0].mean():>11.3f} /{rows[:, 0].max():>6.3f}"
                f"{rows[:, 1].mean():>9.3f} /{rows[:, 1].max():>6.3f}{rows[:, 2].mean():>9.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
