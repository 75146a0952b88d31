"""Time-scaling of imagined trajectories so that they respect the robot's dynamic limits.

The IDM reads joint targets off imagined frames at the video's pace; nothing makes that
pace physically feasible, and a jittery imagined frame shows up as a spike in the implied
acceleration. The safety layer rejects such a trajectory outright (it never clips), so the
executor slows it down first: the path (every position) is kept exactly and only the
clock is stretched. With a uniform stretch factor k, finite-difference velocities scale
by 1/k and accelerations by 1/k^2, so k follows in closed form from the worst ratio, with
the same finite differences the safety check uses (``executor_core.safety``).

Two profiles (``RETIME_PROFILES``):

* ``uniform``: one factor k for the whole trajectory, from its worst interval. A single
  spike (the gripper lagging behind its target at the start of a chunk, a jittery frame)
  slows every other point down with it.
* ``per_interval`` (the runner's default): each interval between two points gets its own
  duration, as long as it has to be and no longer. An interval first gets the time its
  velocity needs; then, while the acceleration at some point exceeds its bound, the two
  intervals around that point are stretched by the square root of the excess (which
  brings that point exactly onto the bound; its neighbours are checked again on the next
  pass). Durations only ever grow, so the passes converge; after a bounded number of
  passes whatever is left is closed with a uniform factor, so the result is always within
  the limits, and it is never longer than the ``uniform`` one (that one is returned when it
  would be). The path is kept exactly, as with ``uniform``; intervals that were feasible
  keep the imagined pace, so the arm spends time only where the motion needs it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal

import numpy as np

from executor_core.robot_description import RobotDescription
from executor_core.types import JointTrajectory

logger = logging.getLogger(__name__)

RetimeProfile = Literal["uniform", "per_interval"]
RETIME_PROFILES: tuple[str, ...] = ("uniform", "per_interval")
_ACCEL_PASSES = 200  # per_interval: passes over the accelerations before the uniform close


def check_retime_profile(profile: str) -> RetimeProfile:
    """The profile itself if known; a ValueError quoting it otherwise."""
    if profile not in RETIME_PROFILES:
        raise ValueError(f"retime_profile must be one of {list(RETIME_PROFILES)}, got {profile!r}")
    return profile  # type: ignore[return-value]


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
    profile: RetimeProfile = "uniform",
) -> JointTrajectory:
    """Stretch the trajectory's clock so that it is within the dynamic limits.

    Positions are unchanged. ``uniform`` rescales given velocities/accelerations
    consistently; ``per_interval`` (module docstring) needs a positions-only trajectory
    (given derivatives would no longer match the new clock; such a trajectory is retimed
    uniformly). Returns the input itself when it is already feasible.
    """
    check_retime_profile(profile)
    k = time_scale_factor(trajectory, robot, start_positions_rad, margin)
    if k == 1.0:
        return trajectory
    positions_only = trajectory.velocities_rad_s is None and trajectory.accelerations_rad_s2 is None
    if profile == "per_interval" and positions_only:
        retimed = _retime_per_interval(trajectory, robot, start_positions_rad, margin)
        if retimed.duration_s <= k * trajectory.duration_s:
            return retimed
        logger.info("per-interval retiming came out longer than %.2fx: uniform instead", k)
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


def _retime_per_interval(
    trajectory: JointTrajectory,
    robot: RobotDescription,
    start_positions_rad: np.ndarray | None,
    margin: float,
) -> JointTrajectory:
    """Each interval as long as its own velocity and the accelerations around it need."""
    q, t = trajectory.positions_rad, trajectory.time_from_start_s
    from_start = start_positions_rad is not None and t[0] > 0
    if from_start:
        q = np.vstack([np.asarray(start_positions_rad, dtype=np.float64)[None], q])
        t = np.concatenate([[0.0], t])
    dq = np.abs(np.diff(q, axis=0))  # (S, J)
    vmax = margin * robot.max_velocity_rad_s
    amax = margin * robot.max_acceleration_rad_s2
    dt = np.maximum(np.diff(t), np.max(dq / vmax, axis=1))  # velocity first
    for _ in range(_ACCEL_PASSES):
        _, a = _implied_dynamics(q, np.concatenate([[0.0], np.cumsum(dt)]), None)  # (S-1, J)
        excess = np.max(np.abs(a) / amax, axis=1, initial=0.0)  # at point i + 1
        if excess.size == 0 or excess.max() <= 1.0 + 1e-9:
            break
        stretch = np.ones_like(dt)
        bad = np.flatnonzero(excess > 1.0)
        factor = np.sqrt(excess[bad]) * (1 + 1e-9)
        np.maximum.at(stretch, bad, factor)  # the interval before the point
        np.maximum.at(stretch, bad + 1, factor)  # and the one after it
        dt = dt * stretch
    new_t = t[0] + np.concatenate([[0.0], np.cumsum(dt)])
    retimed = replace(trajectory, time_from_start_s=new_t[1:] if from_start else new_t)
    k_rest = time_scale_factor(retimed, robot, start_positions_rad, margin)
    if k_rest > 1.0:  # passes ran out: close the rest uniformly (always feasible)
        retimed = replace(retimed, time_from_start_s=retimed.time_from_start_s * k_rest)
    stretch_total = retimed.duration_s / trajectory.duration_s
    logger.info("retimed per interval to the joint limits: %.2fx longer", stretch_total)
    return replace(
        retimed,
        metadata={
            **trajectory.metadata,
            "time_scale": f"{stretch_total:.4g}",
            "retime_profile": "per_interval",
        },
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
