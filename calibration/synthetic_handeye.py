"""Synthetic hand-eye scenes on the real SO-101 kinematics, for tests and benchmarks.

A known camera mount (eye-in-hand: on the gripper; eye-on-base: fixed, looking at the
arm) and a known target placement are chosen; joint configurations are drawn inside the
description's limits until the whole target is in view at a usable distance. Renders go
through :class:`calibration.synthetic.TargetRenderer`, so the hand-eye pipeline is
exercised end to end: FK -> render -> detect -> PnP -> solve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from calibration.camera_info_io import CameraInfoData
from calibration.handeye import Setup
from calibration.kinematics import ArmKinematics
from calibration.synthetic import board_corners_visible
from calibration.targets import TargetSpec
from calibration.transforms import invert_pose, make_pose, rotation_angle_deg

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandEyeScene:
    setup: Setup
    truth: np.ndarray  # (4, 4) effector_from_camera or base_from_camera
    fixed_target: np.ndarray  # (4, 4) base_from_target or effector_from_target
    joint_positions_rad: np.ndarray  # (N, J) model radians, exact
    camera_from_target: np.ndarray  # (N, 4, 4) exact


def _look_at(eye_m: np.ndarray, at_m: np.ndarray, up: np.ndarray) -> np.ndarray:
    """parent_from_camera (optical frame: z forward, y down) at ``eye`` looking at ``at``."""
    z = at_m - eye_m
    z = z / np.linalg.norm(z)
    x = np.cross(-up, z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return make_pose(np.column_stack([x, y, z]), eye_m)


def default_mount(setup: Setup) -> tuple[np.ndarray, np.ndarray]:
    """(truth, fixed_target) for a plausible SO-101 rig, metres."""
    if setup == "eye_in_hand":
        # Camera on the gripper body, 4 cm off the jaw axis, looking along the fingers
        # (the gripper body's -z) and tilted a little towards them.
        eye = np.array([0.04, 0.0, -0.02])
        truth = _look_at(eye, np.array([0.0, 0.0, -0.25]), up=np.array([1.0, 0.0, 0.0]))
        # Target flat on the table in front of the robot, its z pointing down (away
        # from a camera above it, OpenCV's board convention).
        fixed = make_pose(np.diag([1.0, -1.0, -1.0]), np.array([0.22, -0.06, 0.0]))
        return truth, fixed
    if setup == "eye_on_base":
        truth = _look_at(
            np.array([0.45, 0.25, 0.35]), np.array([0.15, 0.0, 0.15]), up=np.array([0, 0, 1.0])
        )
        # A small board clamped to the gripper body, facing away from the jaws.
        fixed = make_pose(np.array([[0, 1.0, 0], [-1.0, 0, 0], [0, 0, 1.0]]), [0.03, -0.03, -0.03])
        fixed = fixed @ make_pose(np.array([0.0, np.pi / 2, 0.0]), np.zeros(3))
        return truth, fixed
    raise ValueError(f"setup must be eye_in_hand or eye_on_base, got {setup!r}")


def make_scene(
    kinematics: ArmKinematics,
    camera: CameraInfoData,
    target: TargetSpec,
    setup: Setup,
    count: int,
    rng: np.random.Generator,
    distance_range_m: tuple[float, float] = (0.12, 0.45),
    max_view_angle_deg: float = 50.0,
    min_rotation_deg: float = 5.0,
) -> HandEyeScene:
    """Draw ``count`` joint configurations that show the whole target."""
    truth, fixed = default_mount(setup)
    lower, upper = kinematics.description.lower_rad, kinematics.description.upper_rad
    margin = 0.05 * (upper - lower)
    q_dim = lower.shape[0]
    joints, views = [], []
    rotations: list[np.ndarray] = []
    for _ in range(40000):
        if len(joints) == count:
            break
        if joints and rng.random() < 0.7:
            # A random walk from an accepted pose: far likelier to keep the target in view,
            # and the pitch joints' steps give rotations about horizontal axes, without
            # which every motion would turn about the vertical (a degenerate set).
            step = rng.normal(0.0, 0.3, size=q_dim) * (upper - lower) / 4
            q = np.clip(joints[rng.integers(len(joints))] + step, lower + margin, upper - margin)
        else:
            q = rng.uniform(lower + margin, upper - margin)
        base_from_effector = kinematics.base_from_effector(q)
        if any(
            rotation_angle_deg(r.T @ base_from_effector[:3, :3]) < min_rotation_deg
            for r in rotations
        ):
            continue
        if setup == "eye_in_hand":
            camera_from_target = invert_pose(base_from_effector @ truth) @ fixed
        else:
            camera_from_target = invert_pose(truth) @ base_from_effector @ fixed
        distance = np.linalg.norm(camera_from_target[:3, 3])
        # Angle between the board normal and the line of sight; grazing views are useless.
        normal = camera_from_target[:3, 2]
        sight = camera_from_target[:3, 3] / max(distance, 1e-9)
        view_angle = np.degrees(np.arccos(np.clip(normal @ sight, -1.0, 1.0)))
        if not distance_range_m[0] <= distance <= distance_range_m[1]:
            continue
        if view_angle > max_view_angle_deg:
            continue
        if not board_corners_visible(camera, target, camera_from_target, margin_px=10.0):
            continue
        joints.append(q)
        views.append(camera_from_target)
        rotations.append(base_from_effector[:3, :3])
    if len(joints) < count:
        raise RuntimeError(f"found only {len(joints)} of {count} {setup} views of the target")
    return HandEyeScene(setup, truth, fixed, np.asarray(joints), np.asarray(views))
