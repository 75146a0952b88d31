"""Time-scaling of imagined trajectories so that they respect the robot's dynamic limits.

The IDM reads joint targets off imagined frames at the video's pace; nothing makes that
pace physically feasible, and a jittery imagined frame shows up as a spike in the implied
acceleration. The safety layer rejects such a trajectory outright (it never clips), so the
executor slows it down first: the path (every position) is kept exactly and only the
clock is stretched. With a uniform stretch factor k, finite-difference velocities scale
by 1/k and accelerations by 1/k^2, so k follows in closed form from the worst ratio, with
the same finite differences the safety check uses (``executor_core.safety``).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from executor_core.robot_description import RobotDescription
from executor_core.types import JointTrajectory

logger = logging.getLogger(__name__)


def _implied_dynamics(
    positions_rad: np.ndarray,  # (N, J)
    time_from_start_s: np.ndarray,  # (N,)
    start_positions_rad: np.ndarray | None,  # (J,)
) -> tuple[np.ndarray, np.ndarray]:
    """Segment velocities (S, J) and midpoint accelerations (S-1, J), as safety checks them."""
    q, t = positions_rad, time_from_start_s
    if start_positions_rad is not None and t[0] > 0:
        q = np.vstack([start_positions_rad[None], q])
        t = np.concatenate([[0.0], t])
    dt = np.diff(t)
    v = np.diff(q, axis=0) / dt[:, None]
    if v.shape[0] < 2:
        return v, np.zeros((0, q.shape[1]))
    a = np.diff(v, axis=0) / (0.5 * (dt[1:] + dt[:-1]))[:, None]
    return v, a


def time_scale_factor(
    trajectory: JointTrajectory,
    robot: RobotDescription,
    start_positions_rad: np.ndarray | None = None,  # (J,) measured joint state
    margin: float = 0.9,
) -> float:
    """The smallest stretch k >= 1 that brings |v| <= margin*vmax and |a| <= margin*amax."""
    if not 0 < margin <= 1:
        raise ValueError(f"margin must be in (0, 1], got {margin!r}")
    if tuple(trajectory.joint_names) != robot.joint_names:
        raise ValueError(
            f"trajectory joints {trajectory.joint_names!r} differ from the robot's "
            f"{robot.joint_names!r}"
        )
    v, a = _implied_dynamics(
        trajectory.positions_rad, trajectory.time_from_start_s, start_positions_rad
    )
    k_v = float(np.max(np.abs(v) / (margin * robot.max_velocity_rad_s), initial=0.0))
    k_a = float(np.sqrt(np.max(np.abs(a) / (margin * robot.max_acceleration_rad_s2), initial=0.0)))
    return max(1.0, k_v, k_a)


def retime_to_limits(
    trajectory: JointTrajectory,
    robot: RobotDescription,
    start_positions_rad: np.ndarray | None = None,  # (J,)
    margin: float = 0.9,
) -> JointTrajectory:
    """Stretch the trajectory's clock uniformly so that it is within the dynamic limits.

    Positions are unchanged; given velocities/accelerations are rescaled consistently.
    Returns the input itself when it is already feasible.
    """
    k = time_scale_factor(trajectory, robot, start_positions_rad, margin)
    if k == 1.0:
        return trajectory
    logger.info("slowing the trajectory down %.2fx to respect the joint limits", k)
    vel = trajectory.velocities_rad_s
    acc = trajectory.accelerations_rad_s2
    return replace(
        trajectory,
        time_from_start_s=trajectory.time_from_start_s * k,
        velocities_rad_s=None if vel is None else vel / k,
        accelerations_rad_s2=None if acc is None else acc / k**2,
        metadata={**trajectory.metadata, "time_scale": f"{k:.4g}"},
    )


def within_position_limits(
    trajectory: JointTrajectory,
    robot: RobotDescription,
    tolerance_rad: float = 0.05,
) -> JointTrajectory:
    """Move targets at most ``tolerance_rad`` beyond a joint's range onto the range limit.

    A learned model estimates targets, and one that imitates a gripper squeezing an object
    (commanded to its closed limit) lands a little past the limit about half the time. Such
    near-misses are put on the limit and logged with the joint and the largest excess;
    anything further out is refused with a ValueError naming joint, point and value, since
    that is a wrong prediction rather than an estimate's noise. The safety layer still
    checks the result and never clips.
    """
    if trajectory.joint_names != robot.joint_names:
        raise ValueError(
            f"trajectory joints {trajectory.joint_names!r} are not the robot's "
            f"{robot.joint_names!r} in order"
        )
    if not (np.isfinite(tolerance_rad) and tolerance_rad >= 0):
        raise ValueError(f"tolerance_rad must be >= 0, got {tolerance_rad!r}")
    q = trajectory.positions_rad
    lower, upper = robot.lower_rad, robot.upper_rad
    excess = np.maximum(lower - q, q - upper)  # (N, J) > 0 where outside the range
    if np.all(excess <= 0):
        return trajectory
    i, j = np.unravel_index(np.argmax(excess), excess.shape)
    if excess[i, j] > tolerance_rad:
        raise ValueError(
            f"joint {robot.joint_names[j]!r} point {i}: target {q[i, j]:.6g} rad is "
            f"{excess[i, j]:.4g} rad outside [{lower[j]:.6g}, {upper[j]:.6g}] "
            f"(more than tolerance_rad {tolerance_rad:.4g})"
        )
    for j_out in np.flatnonzero(np.any(excess > 0, axis=0)):
        logger.warning(
            "joint %r: %d target(s) up to %.4f rad outside its range put on the limit",
            robot.joint_names[j_out],
            int(np.sum(excess[:, j_out] > 0)),
            float(np.max(excess[:, j_out])),
        )
    return replace(
        trajectory,
        positions_rad=np.clip(q, lower, upper),
        metadata={**trajectory.metadata, "limited_targets": str(int(np.sum(excess > 0)))},
    )
