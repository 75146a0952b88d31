"""What a joint_trajectory_controller does with a trajectory, without ROS or a simulator.

The rules of ros2_control's ``joint_trajectory_controller`` that ``sim_arm_node`` and
``lerobot_arm_node`` follow: goal validation with the ``FollowJointTrajectory`` error codes
(also ``OLD_HEADER_TIMESTAMP`` for a trajectory that ended before it arrived), per-joint
tolerances (0 keeps the default, a negative value disables the check), the per-tick path /
goal tolerance verdict, and sampling at the control rate:

- splines between the waypoints: cubic Hermite segments, so positions and velocities are
  continuous. Where the points carry ``velocities`` those are the knot slopes (the JTC's
  cubic spline); a ``positions``-only trajectory (the IDM's chunks) is upsampled smoothly
  with monotone slopes (Fritsch-Carlson, as PCHIP): no overshoot past a waypoint, and rest
  at the last point. ``interpolation="linear"`` keeps straight segments;
- the start: the trajectory begins at its start time from the controller's state, as the
  JTC does (a knot is prepended unless point 0 is at ``time_from_start`` 0). When a new
  trajectory preempts a running one that state is the running one's desired position and
  velocity at that instant (:func:`start_state`): velocity continuity, no jerk;
  otherwise it is the measured position at rest;
- an empty trajectory is a hold (the caller's: stop following, hold the measured state).

Pure numpy: a simulator, a test or a real driver can use it; the error codes are copied
from ``control_msgs/FollowJointTrajectory.Result`` so that no message type is imported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

# Error codes of control_msgs/FollowJointTrajectory.Result.
SUCCESSFUL = 0
INVALID_GOAL = -1
INVALID_JOINTS = -2
OLD_HEADER_TIMESTAMP = -3
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
    # (K, J) knot velocities of the cubic Hermite segments; None: linear segments.
    knots_v_rad_s: np.ndarray | None = None

    @property
    def end_s(self) -> float:
        return float(self.knots_t_s[-1])

    def desired(self, now_s: float) -> np.ndarray:
        """The commanded position at ``now_s``; the first knot before, the last after."""
        return self.sample(now_s)[0]

    def desired_velocity(self, now_s: float) -> np.ndarray:
        return self.sample(now_s)[1]

    def sample(self, now_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(position, velocity) of the trajectory at ``now_s`` (rest outside its span)."""
        t, q = self.knots_t_s, self.knots_q_rad
        if len(t) == 1 or now_s < t[0]:
            return q[0].copy(), np.zeros(q.shape[1])
        if now_s >= t[-1]:
            return q[-1].copy(), np.zeros(q.shape[1])
        i = int(np.searchsorted(t, now_s, side="right")) - 1
        h = t[i + 1] - t[i]
        s = (now_s - t[i]) / h
        if self.knots_v_rad_s is None:
            return q[i] + s * (q[i + 1] - q[i]), (q[i + 1] - q[i]) / h
        v = self.knots_v_rad_s
        h00, h10, h01, h11 = (
            2 * s**3 - 3 * s**2 + 1,
            s**3 - 2 * s**2 + s,
            3 * s**2 - 2 * s**3,
            s**3 - s**2,
        )
        pos = h00 * q[i] + h10 * h * v[i] + h01 * q[i + 1] + h11 * h * v[i + 1]
        d00, d10, d11 = 6 * s**2 - 6 * s, 3 * s**2 - 4 * s + 1, 3 * s**2 - 2 * s
        vel = d00 * (q[i] - q[i + 1]) / h + d10 * v[i] + d11 * v[i + 1]
        return pos, vel


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


def validate_velocities(
    names: list[str], velocities: list[list[float]], robot_names: tuple[str, ...]
) -> tuple[int, str, np.ndarray | None]:
    """The points' ``velocities``: all empty (None), or one per joint on every point."""
    if all(len(v) == 0 for v in velocities):
        return SUCCESSFUL, "", None
    for i, v in enumerate(velocities):
        if len(v) != len(names):
            return INVALID_GOAL, f"point {i} has {len(v)} velocities for {len(names)} joints", None
    v = np.asarray(velocities, dtype=np.float64)[:, [names.index(n) for n in robot_names]]
    if not np.all(np.isfinite(v)):
        return INVALID_GOAL, "trajectory has non-finite velocities", None
    return SUCCESSFUL, "", v


def check_header_time(stamp_s: float, now_s: float, last_time_s: float) -> tuple[int, str]:
    """OLD_HEADER_TIMESTAMP when a stamped trajectory ended before it arrived (stamp 0: now)."""
    if stamp_s > 0 and stamp_s + last_time_s < now_s:
        return OLD_HEADER_TIMESTAMP, (
            f"trajectory stamped {stamp_s:.3f} s ended at {stamp_s + last_time_s:.3f} s, "
            f"before now ({now_s:.3f} s)"
        )
    return SUCCESSFUL, ""


def start_state(
    running: ActiveTrajectory | None, now_s: float, measured_q_rad: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where a new trajectory starts from: the running one's desired state (preemption
    with velocity continuity), else the measured position at rest."""
    if running is not None and running.outcome is None:
        return running.sample(now_s)
    return np.asarray(measured_q_rad, dtype=np.float64).copy(), np.zeros(len(measured_q_rad))


def monotone_slopes(
    t_s: np.ndarray, q_rad: np.ndarray, v_start: np.ndarray, v_end: np.ndarray
) -> np.ndarray:
    """(K, J) knot slopes for positions-only waypoints: Fritsch-Carlson (PCHIP) inside,
    so no segment overshoots its waypoints; the given velocities at both ends."""
    v = np.zeros_like(q_rad)
    v[0], v[-1] = v_start, v_end
    if len(t_s) < 3:
        return v
    h = np.diff(t_s)[:, None]  # (K-1, 1)
    d = np.diff(q_rad, axis=0) / h  # secants (K-1, J)
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same_sign = d[:-1] * d[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (w1 + w2) / (w1 / d[:-1] + w2 / d[1:])
    v[1:-1] = np.where(same_sign, mean, 0.0)
    return v


Interpolation = Literal["spline", "linear"]


def make_active(
    q_rad: np.ndarray,
    times_s: np.ndarray,
    start_s: float,
    current_q_rad: np.ndarray,
    goal_tolerance_rad: np.ndarray,
    path_tolerance_rad: np.ndarray,
    goal_time_tolerance_s: float,
    velocities_rad_s: np.ndarray | None = None,
    start_velocity_rad_s: np.ndarray | None = None,
    interpolation: Interpolation = "spline",
) -> ActiveTrajectory:
    """Knots start at the controller's state (``current_q_rad`` moving at
    ``start_velocity_rad_s``, at ``start_s``) unless point 0 is at t=0; splines between
    (the points' velocities where given, monotone slopes and rest at the end otherwise)."""
    if interpolation not in ("spline", "linear"):
        raise ValueError(f"interpolation must be 'spline' or 'linear', got {interpolation!r}")
    q_rad = np.asarray(q_rad, dtype=np.float64)
    t_abs = start_s + np.asarray(times_s, dtype=np.float64)
    v0 = np.zeros(q_rad.shape[1]) if start_velocity_rad_s is None else start_velocity_rad_s
    v_knots = None if velocities_rad_s is None else np.asarray(velocities_rad_s, np.float64)
    if times_s[0] > 0:
        t_abs = np.concatenate([[start_s], t_abs])
        q_rad = np.vstack([np.asarray(current_q_rad, dtype=np.float64)[None], q_rad])
        if v_knots is not None:
            v_knots = np.vstack([np.asarray(v0, dtype=np.float64)[None], v_knots])
    if interpolation == "linear":
        v_knots = None
    elif v_knots is None:
        v_knots = monotone_slopes(t_abs, q_rad, v0, np.zeros(q_rad.shape[1]))
    return ActiveTrajectory(
        t_abs,
        q_rad,
        goal_tolerance_rad,
        path_tolerance_rad,
        goal_time_tolerance_s,
        knots_v_rad_s=v_knots,
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
