"""What a joint_trajectory_controller does with a trajectory, without ROS or a simulator.

The rules of ros2_control's ``joint_trajectory_controller`` that ``sim_arm_node`` follows:
goal validation with the ``FollowJointTrajectory`` error codes, per-joint tolerances (0
keeps the default, a negative value disables the check), linear interpolation from the
measured state at the trajectory start, and the per-tick path / goal tolerance verdict.
Pure numpy: a simulator, a test or a real driver can use it; the error codes are copied
from ``control_msgs/FollowJointTrajectory.Result`` so that no message type is imported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# Error codes of control_msgs/FollowJointTrajectory.Result.
SUCCESSFUL = 0
INVALID_GOAL = -1
INVALID_JOINTS = -2
PATH_TOLERANCE_VIOLATED = -4
GOAL_TOLERANCE_VIOLATED = -5


@dataclass
class ActiveTrajectory:
    """A trajectory being followed, in robot joint order, times on the monotonic clock."""

    knots_t_s: np.ndarray  # (K,) absolute monotonic seconds, strictly increasing
    knots_q_rad: np.ndarray  # (K, J)
    goal_tolerance_rad: np.ndarray  # (J,), inf = unchecked
    path_tolerance_rad: np.ndarray  # (J,), inf = unchecked
    goal_time_tolerance_s: float
    outcome: tuple[int, str] | None = None  # (error_code, error_string) once finished
    # The latest trajectory time a control tick compared against the path (monotonic s).
    path_checked_s: float = -np.inf

    @property
    def end_s(self) -> float:
        return float(self.knots_t_s[-1])

    def desired(self, now_s: float) -> np.ndarray:
        """Linear interpolation between knots; holds the last knot after the end."""
        t = self.knots_t_s
        return np.array(
            [np.interp(now_s, t, self.knots_q_rad[:, j]) for j in range(self.knots_q_rad.shape[1])]
        )


def validate_trajectory(
    names: list[str],
    positions_rad: list[list[float]],
    times_s: list[float],
    robot_names: tuple[str, ...],
    lower_rad: np.ndarray,
    upper_rad: np.ndarray,
) -> tuple[int, str, np.ndarray | None]:
    """JTC-style goal validation -> (error_code, error_string, (N, J) robot-order q)."""
    if sorted(names) != sorted(robot_names) or len(set(names)) != len(names):
        return (
            INVALID_JOINTS,
            (f"joints {names!r} do not match the controller's {list(robot_names)!r}"),
            None,
        )
    if not positions_rad:
        return INVALID_GOAL, "trajectory has no points", None
    for i, p in enumerate(positions_rad):
        if len(p) != len(names):
            return INVALID_GOAL, f"point {i} has {len(p)} positions for {len(names)} joints", None
    q = np.asarray(positions_rad, dtype=np.float64)[:, [names.index(n) for n in robot_names]]
    t = np.asarray(times_s, dtype=np.float64)
    if not np.all(np.isfinite(q)) or not np.all(np.isfinite(t)):
        return INVALID_GOAL, "trajectory has non-finite positions or times", None
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        return INVALID_GOAL, f"time_from_start must be >= 0 and increasing, got {t.tolist()}", None
    for j, name in enumerate(robot_names):
        bad = np.flatnonzero((q[:, j] < lower_rad[j]) | (q[:, j] > upper_rad[j]))
        if bad.size:
            i = int(bad[0])
            return (
                INVALID_GOAL,
                (
                    f"joint {name!r} point {i}: {q[i, j]:.6g} rad outside "
                    f"[{lower_rad[j]:.6g}, {upper_rad[j]:.6g}]"
                ),
                None,
            )
    return SUCCESSFUL, "", q


def make_active(
    q_rad: np.ndarray,
    times_s: np.ndarray,
    start_s: float,
    current_q_rad: np.ndarray,
    goal_tolerance_rad: np.ndarray,
    path_tolerance_rad: np.ndarray,
    goal_time_tolerance_s: float,
) -> ActiveTrajectory:
    """Knots start at the measured state (at start_s) unless point 0 is at t=0."""
    t_abs = start_s + np.asarray(times_s, dtype=np.float64)
    if times_s[0] > 0:
        t_abs = np.concatenate([[start_s], t_abs])
        q_rad = np.vstack([current_q_rad[None], q_rad])
    return ActiveTrajectory(
        t_abs, q_rad, goal_tolerance_rad, path_tolerance_rad, goal_time_tolerance_s
    )


def tolerance_vector(
    tolerances: list[tuple[str, float]], robot_names: tuple[str, ...], default_rad: float
) -> np.ndarray:
    """(name, position) pairs -> (J,) rad; 0 keeps the default, < 0 disables (inf)."""
    out = np.full(len(robot_names), default_rad if default_rad > 0 else np.inf)
    for name, value in tolerances:
        if name not in robot_names:
            continue
        j = robot_names.index(name)
        out[j] = np.inf if value < 0 else (value if value > 0 else out[j])
    return out


def step_outcome(
    active: ActiveTrajectory, now_s: float, q_rad: np.ndarray, robot_names: tuple[str, ...]
) -> tuple[int, str] | None:
    """Tolerance bookkeeping for one control tick; an outcome once the goal is decided."""
    if now_s <= active.end_s or active.path_checked_s < active.end_s:
        # A loaded machine can stall the control timer across the end of a trajectory (or
        # past all of a short one): the first late tick then checks the path at its end
        # point, so a path tolerance is never skipped silently.
        outcome = _path_outcome(active, min(now_s, active.end_s), q_rad, robot_names)
        if outcome is not None or now_s <= active.end_s:
            return outcome
    return _goal_outcome(active, now_s, q_rad, robot_names)


def _path_outcome(
    active: ActiveTrajectory, t_s: float, q_rad: np.ndarray, robot_names: tuple[str, ...]
) -> tuple[int, str] | None:
    """PATH_TOLERANCE_VIOLATED if ``q_rad`` is off the path at trajectory time ``t_s``."""
    active.path_checked_s = t_s
    err = np.abs(q_rad - active.desired(t_s))
    bad = np.flatnonzero(err > active.path_tolerance_rad)
    if not bad.size:
        return None
    j = int(bad[0])
    return PATH_TOLERANCE_VIOLATED, (
        f"joint {robot_names[j]!r} path error {err[j]:.4g} rad > tolerance "
        f"{active.path_tolerance_rad[j]:.4g} at t={t_s - active.knots_t_s[0]:.3f} s"
    )


def _goal_outcome(
    active: ActiveTrajectory, now_s: float, q_rad: np.ndarray, robot_names: tuple[str, ...]
) -> tuple[int, str] | None:
    """SUCCESSFUL at the goal; GOAL_TOLERANCE_VIOLATED once goal_time_tolerance is over."""
    err = np.abs(q_rad - active.knots_q_rad[-1])
    bad = np.flatnonzero(err > active.goal_tolerance_rad)
    if not bad.size:
        return SUCCESSFUL, ""
    if now_s <= active.end_s + active.goal_time_tolerance_s:
        return None
    j = int(bad[0])
    return GOAL_TOLERANCE_VIOLATED, (
        f"joint {robot_names[j]!r} final error {err[j]:.4g} rad > goal tolerance "
        f"{active.goal_tolerance_rad[j]:.4g} after goal_time_tolerance "
        f"{active.goal_time_tolerance_s:.3g} s"
    )
