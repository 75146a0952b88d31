"""Safety checks every trajectory passes before it reaches the arm.

The checks are pure functions over numpy arrays and the robot description YAML, so the
safety node stays a thin adapter and the rules are unit-tested with exact values. A
violation is never clipped away: the trajectory is rejected and the message names the
joint, the point index and the offending value, so the operator can see what the model
asked for.

The :class:`SafetySupervisor` holds the two latches that gate forwarding: the operator
heartbeat (dead-man) and the e-stop, which only an explicit reset clears.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from executor_core.robot_description import RobotDescription
from executor_core.types import JointTrajectory

logger = logging.getLogger(__name__)

# Limits are compared with a tiny relative slack so that a trajectory computed exactly at
# the limit (e.g. by a time-scaling step) is not rejected for float rounding.
_REL_SLACK = 1e-9
# With a tolerance of 0, a point equal to the measured state still passes float rounding.
_ABS_SLACK_RAD = 1e-12


@dataclass(frozen=True)
class SafetyConfig:
    """Checks beyond the robot description's per-joint limits."""

    max_start_jump_rad: float = 0.25  # |first point - measured position| per joint
    # Joints whose first point may be any distance from the measured position (still
    # velocity-checked from it): a gripper squeezing an object is commanded past where
    # the object stops it, so its command and its measurement legitimately disagree.
    start_jump_exempt_joints: tuple[str, ...] = ()
    # A first point at time_from_start 0 is a command to be there now: its implied velocity
    # from the measured state is infinite unless it is the measured state. It must match
    # within this tolerance on every joint (exempt joints included), else it is rejected.
    zero_time_start_tolerance_rad: float = 0.01
    require_current_state: bool = True  # reject when no joint state has been measured
    max_violations_reported: int = 5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_start_jump_rad) and self.max_start_jump_rad > 0):
            raise ValueError(f"max_start_jump_rad must be > 0, got {self.max_start_jump_rad!r}")
        tol = self.zero_time_start_tolerance_rad
        if not (math.isfinite(tol) and tol >= 0):
            raise ValueError(f"zero_time_start_tolerance_rad must be >= 0, got {tol!r}")
        if self.max_violations_reported < 1:
            raise ValueError(
                f"max_violations_reported must be >= 1, got {self.max_violations_reported!r}"
            )


@dataclass(frozen=True)
class Violation:
    """One broken rule; ``joint`` and ``index`` are empty/-1 when not joint-specific."""

    rule: str  # joint_names | shape | non_finite | time | position | velocity | ...
    message: str
    joint: str = ""
    index: int = -1
    value: float = float("nan")
    limit: float = float("nan")


@dataclass(frozen=True)
class SafetyReport:
    violations: tuple[Violation, ...] = ()
    # The trajectory reordered into the robot's joint order (None when rejected early).
    positions_rad: np.ndarray | None = None  # (N, J) robot order

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self, max_items: int = 5) -> str:
        if self.ok:
            return ""
        shown = "; ".join(v.message for v in self.violations[:max_items])
        more = len(self.violations) - max_items
        return shown + (f" (+{more} more)" if more > 0 else "")


class SafetyRejectionError(ValueError):
    """Raised by :func:`require_safe` with the report attached."""

    def __init__(self, report: SafetyReport) -> None:
        super().__init__(report.summary())
        self.report = report


def check_trajectory(
    joint_names: tuple[str, ...] | list[str],
    positions_rad: np.ndarray,  # (N, J) in the order of joint_names
    time_from_start_s: np.ndarray,  # (N,)
    robot: RobotDescription,
    current_positions_rad: np.ndarray | None = None,  # (J_robot,) robot joint order
    velocities_rad_s: np.ndarray | None = None,  # (N, J) or None
    config: SafetyConfig | None = None,
) -> SafetyReport:
    """Check a trajectory against the robot's limits; returns every violation found.

    The checks run in stages, each needing the ones before it to pass: joint names, then
    shapes, then finite values, then increasing times, then the limits (position, start
    jump, velocity, acceleration), whose violations are all reported together.

    Velocity and acceleration are checked both as given (if the trajectory carries
    velocities) and as implied by the positions: finite differences between consecutive
    points, starting from the measured position at t=0 when it is known. A first point
    at t=0 has no segment leading to it: it must be the measured state within
    ``zero_time_start_tolerance_rad`` (rule ``zero_time_start``).
    """
    config = config or SafetyConfig()
    names = tuple(joint_names)
    violations = _check_joint_names(names, robot)
    if violations:
        return SafetyReport(tuple(violations))

    q = np.asarray(positions_rad, dtype=np.float64)
    t = np.asarray(time_from_start_s, dtype=np.float64)
    v_given = _given_velocities(velocities_rad_s)
    violations = _check_shapes(q, t, v_given, len(names))
    if violations:
        return SafetyReport(tuple(violations))

    # Reorder columns into the robot's joint order so limits line up.
    q, v_given = _robot_order(q, names, robot), _robot_order(v_given, names, robot)
    violations = _check_finite(q, v_given, t, robot, config) or _check_times(t, config)
    if violations:
        return SafetyReport(tuple(violations))

    current, state_violations = _measured_state(current_positions_rad, robot, config)
    violations = [
        *_check_position_limits(q, robot, config),
        *state_violations,
        *_check_start_jump(q, current, robot, config),
        *_check_zero_time_start(q, t, current, robot, config),
        *_check_dynamics(q, t, current, v_given, robot, config),
    ]
    if violations:
        return SafetyReport(tuple(violations))
    return SafetyReport((), positions_rad=q)


def _check_joint_names(names: tuple[str, ...], robot: RobotDescription) -> list[Violation]:
    """Every robot joint exactly once, and no other."""
    expected = set(robot.joint_names)
    out: list[Violation] = []
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append(Violation("joint_names", f"duplicate joint names {dupes!r}"))
    unknown = sorted(set(names) - expected)
    if unknown:
        out.append(
            Violation(
                "joint_names",
                f"unknown joints {unknown!r} (robot {robot.name!r} has "
                f"{list(robot.joint_names)!r})",
            )
        )
    missing = [n for n in robot.joint_names if n not in names]
    if missing:
        out.append(Violation("joint_names", f"missing joints {missing!r}"))
    return out


def _given_velocities(velocities_rad_s: np.ndarray | None) -> np.ndarray | None:
    """The trajectory's own velocities, or None when it carries none (absent or empty)."""
    if velocities_rad_s is None or np.asarray(velocities_rad_s).size == 0:
        return None
    return np.asarray(velocities_rad_s, dtype=np.float64)


def _check_shapes(
    q: np.ndarray, t: np.ndarray, v_given: np.ndarray | None, n_joints: int
) -> list[Violation]:
    """(N>0, J) positions, (N,) times and, if given, velocities shaped like the positions."""
    if q.ndim != 2 or q.shape[1] != n_joints or q.shape[0] == 0:
        return [Violation("shape", f"positions must be (N>0, {n_joints}), got {q.shape!r}")]
    if t.shape != (q.shape[0],):
        return [Violation("shape", f"time_from_start must be ({q.shape[0]},), got {t.shape!r}")]
    if v_given is not None and v_given.shape != q.shape:
        return [Violation("shape", f"velocities must be {q.shape!r}, got {v_given.shape!r}")]
    return []


def _robot_order(
    values: np.ndarray | None, names: tuple[str, ...], robot: RobotDescription
) -> np.ndarray | None:
    """(N, J) columns in ``names`` order -> the robot's joint order (None stays None)."""
    if values is None:
        return None
    return values[:, [names.index(n) for n in robot.joint_names]]


def _check_finite(
    q: np.ndarray,
    v_given: np.ndarray | None,
    t: np.ndarray,
    robot: RobotDescription,
    config: SafetyConfig,
) -> list[Violation]:
    """No NaN or infinity in positions, given velocities or times."""
    names = robot.joint_names
    out: list[Violation] = []
    for label, arr in (("position", q), ("velocity", v_given)):
        if arr is None:
            continue
        for i, j in np.argwhere(~np.isfinite(arr))[: config.max_violations_reported]:
            out.append(
                Violation(
                    "non_finite",
                    f"joint {names[j]!r} point {i}: {label} is {arr[i, j]!r}",
                    names[j],
                    int(i),
                    float(arr[i, j]),
                )
            )
    for i in np.flatnonzero(~np.isfinite(t))[: config.max_violations_reported]:
        out.append(
            Violation(
                "non_finite",
                f"point {i}: time_from_start is {t[i]!r}",
                index=int(i),
                value=float(t[i]),
            )
        )
    return out


def _check_times(t: np.ndarray, config: SafetyConfig) -> list[Violation]:
    """time_from_start starts at or after 0 and strictly increases."""
    out: list[Violation] = []
    if t[0] < 0:
        out.append(
            Violation(
                "time",
                f"point 0: time_from_start {t[0]!r} s is negative",
                index=0,
                value=float(t[0]),
            )
        )
    for i in np.flatnonzero(np.diff(t) <= 0)[: config.max_violations_reported]:
        out.append(
            Violation(
                "time",
                f"point {i + 1}: time_from_start {t[i + 1]!r} s not after {t[i]!r} s",
                index=int(i + 1),
                value=float(t[i + 1]),
            )
        )
    return out


def _check_position_limits(
    q: np.ndarray, robot: RobotDescription, config: SafetyConfig
) -> list[Violation]:
    """Every point within the joints' [lower, upper] limits (robot order)."""
    names, lower, upper = robot.joint_names, robot.lower_rad, robot.upper_rad
    below = "position {value:.6g} rad below lower limit {limit:.6g} rad"
    above = "position {value:.6g} rad above upper limit {limit:.6g} rad"
    return [
        *_per_joint("position", below, np.argwhere(q < lower), q, lower, names, config),
        *_per_joint("position", above, np.argwhere(q > upper), q, upper, names, config),
    ]


def _measured_state(
    current_positions_rad: np.ndarray | None, robot: RobotDescription, config: SafetyConfig
) -> tuple[np.ndarray | None, list[Violation]]:
    """The measured joint state if usable (a finite (J,) vector), and why not otherwise."""
    n_joints = len(robot.joint_names)
    if current_positions_rad is None:
        if not config.require_current_state:
            return None, []
        return None, [
            Violation(
                "current_state",
                "no measured joint state yet (joint_states not received); "
                "cannot check the jump to the first point",
            )
        ]
    current = np.asarray(current_positions_rad, dtype=np.float64)
    if current.shape != (n_joints,) or not np.all(np.isfinite(current)):
        return None, [
            Violation(
                "current_state",
                f"measured joint state {current!r} is not a finite ({n_joints},) vector",
            )
        ]
    return current, []


def _check_start_jump(
    q: np.ndarray, current: np.ndarray | None, robot: RobotDescription, config: SafetyConfig
) -> list[Violation]:
    """The first point within max_start_jump_rad of the measured state (exempt joints aside)."""
    if current is None:
        return []
    names = robot.joint_names
    jump = np.abs(q[0] - current)
    exempt = np.isin(names, config.start_jump_exempt_joints)
    too_far = (jump > config.max_start_jump_rad * (1 + _REL_SLACK)) & ~exempt
    return [
        Violation(
            "start_jump",
            f"joint {names[j]!r} point 0: jump {jump[j]:.6g} rad "
            f"from measured {current[j]:.6g} rad exceeds max_start_jump_rad "
            f"{config.max_start_jump_rad:.6g}",
            names[j],
            0,
            float(q[0, j]),
            config.max_start_jump_rad,
        )
        for j in np.flatnonzero(too_far)
    ]


def _check_zero_time_start(
    q: np.ndarray,
    t: np.ndarray,
    current: np.ndarray | None,
    robot: RobotDescription,
    config: SafetyConfig,
) -> list[Violation]:
    """A first point at t=0 equals the measured state within zero_time_start_tolerance_rad.

    Every joint, exempt ones too: no segment leads to such a point, so the velocity check
    cannot see the jump; its implied velocity is infinite.
    """
    if current is None or t[0] > 0:
        return []
    names, tol = robot.joint_names, config.zero_time_start_tolerance_rad
    jump = np.abs(q[0] - current)
    return [
        Violation(
            "zero_time_start",
            f"joint {names[j]!r} point 0 at time_from_start 0: jump {jump[j]:.6g} rad from "
            f"measured {current[j]:.6g} rad exceeds zero_time_start_tolerance_rad {tol:.6g} "
            "(a point at t=0 must be the measured state: its implied velocity is infinite)",
            names[j],
            0,
            float(q[0, j]),
            tol,
        )
        for j in np.flatnonzero(jump > tol * (1 + _REL_SLACK) + _ABS_SLACK_RAD)
    ]


def _check_dynamics(
    q: np.ndarray,  # (N, J) robot order
    t: np.ndarray,  # (N,)
    current: np.ndarray | None,  # (J,)
    v_given: np.ndarray | None,  # (N, J)
    robot: RobotDescription,
    config: SafetyConfig,
) -> list[Violation]:
    """Implied and commanded velocities, then implied accelerations, within the limits."""
    segments = _Segments.of(q, t, current)
    return [
        *_check_implied_velocity(segments, robot, config),
        *_check_commanded_velocity(v_given, robot, config),
        *_check_acceleration(segments, robot, config),
    ]


@dataclass(frozen=True)
class _Segments:
    """Straight-line segments between consecutive points; segment k ends at point
    ``k + first_point``. With a measured start the first segment runs from (t=0, current)
    to point 0 (if point 0 is not at t=0)."""

    dt_s: np.ndarray  # (S,)
    velocity_rad_s: np.ndarray  # (S, J)
    first_point: int

    @classmethod
    def of(cls, q: np.ndarray, t: np.ndarray, current: np.ndarray | None) -> _Segments:
        if current is not None and t[0] > 0:
            q_ext = np.vstack([current[None], q])
            t_ext = np.concatenate([[0.0], t])
            first_point = 0
        else:
            q_ext, t_ext, first_point = q, t, 1
        dt = np.diff(t_ext)
        return cls(dt, np.diff(q_ext, axis=0) / dt[:, None], first_point)


def _check_implied_velocity(
    segments: _Segments, robot: RobotDescription, config: SafetyConfig
) -> list[Violation]:
    """Segment velocities (from the positions, and the measured start) within the limits."""
    v_seg, vmax = segments.velocity_rad_s, robot.max_velocity_rad_s
    return _per_joint(
        "velocity",
        "velocity {value:.6g} rad/s exceeds limit {limit:.6g} rad/s",
        _beyond(v_seg, vmax),
        v_seg,
        vmax,
        robot.joint_names,
        config,
        first_point=segments.first_point,
    )


def _check_commanded_velocity(
    v_given: np.ndarray | None, robot: RobotDescription, config: SafetyConfig
) -> list[Violation]:
    """The trajectory's own velocities (if it carries any) within the limits."""
    if v_given is None:
        return []
    vmax = robot.max_velocity_rad_s
    return _per_joint(
        "velocity",
        "commanded velocity {value:.6g} rad/s exceeds limit {limit:.6g} rad/s",
        _beyond(v_given, vmax),
        v_given,
        vmax,
        robot.joint_names,
        config,
    )


def _check_acceleration(
    segments: _Segments, robot: RobotDescription, config: SafetyConfig
) -> list[Violation]:
    """Acceleration between consecutive segments, over the distance of their midpoints."""
    v_seg, dt = segments.velocity_rad_s, segments.dt_s
    if v_seg.shape[0] < 2:
        return []
    amax = robot.max_acceleration_rad_s2
    mid_dt = 0.5 * (dt[1:] + dt[:-1])
    a = np.diff(v_seg, axis=0) / mid_dt[:, None]  # (S-1, J), at point k + first_point
    return _per_joint(
        "acceleration",
        "acceleration {value:.6g} rad/s^2 exceeds limit {limit:.6g} rad/s^2",
        _beyond(a, amax),
        a,
        amax,
        robot.joint_names,
        config,
        first_point=segments.first_point,
    )


def _beyond(values: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """(row, joint) indices where |values| exceeds the per-joint limit (with float slack)."""
    return np.argwhere(np.abs(values) > limit * (1 + _REL_SLACK))


def _per_joint(
    rule: str,
    template: str,  # the message after "joint <name> point <i>: ", with {value} and {limit}
    bad: np.ndarray,  # (K, 2) (row, joint) indices, as np.argwhere gives them
    values: np.ndarray,  # (rows, J)
    limit: np.ndarray,  # (J,)
    names: tuple[str, ...],
    config: SafetyConfig,
    first_point: int = 0,  # the point index of row 0
) -> list[Violation]:
    """One violation per bad (row, joint), the first max_violations_reported of them."""
    return [
        Violation(
            rule,
            f"joint {names[j]!r} point {k + first_point}: "
            + template.format(value=values[k, j], limit=limit[j]),
            names[j],
            int(k + first_point),
            float(values[k, j]),
            float(limit[j]),
        )
        for k, j in bad[: config.max_violations_reported]
    ]


def check_joint_trajectory(
    trajectory: JointTrajectory,
    robot: RobotDescription,
    current_positions_rad: np.ndarray | None = None,
    config: SafetyConfig | None = None,
) -> SafetyReport:
    """:func:`check_trajectory` for the typed :class:`JointTrajectory`."""
    return check_trajectory(
        trajectory.joint_names,
        trajectory.positions_rad,
        trajectory.time_from_start_s,
        robot,
        current_positions_rad,
        trajectory.velocities_rad_s,
        config,
    )


def require_safe(
    trajectory: JointTrajectory,
    robot: RobotDescription,
    current_positions_rad: np.ndarray | None = None,
    config: SafetyConfig | None = None,
) -> None:
    """Raise :class:`SafetyRejectionError` if the trajectory breaks any rule."""
    report = check_joint_trajectory(trajectory, robot, current_positions_rad, config)
    if not report.ok:
        raise SafetyRejectionError(report)


@dataclass
class SafetySupervisor:
    """Heartbeat dead-man and latching e-stop; the safety node feeds it times and events.

    Times are seconds on one monotonic clock chosen by the caller. A heartbeat timeout of
    0 disables the dead-man (documented for bench setups without an operator station).
    """

    heartbeat_timeout_s: float = 0.5
    estop_latched: bool = False
    last_heartbeat_s: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.heartbeat_timeout_s) and self.heartbeat_timeout_s >= 0):
            raise ValueError(f"heartbeat_timeout_s must be >= 0, got {self.heartbeat_timeout_s!r}")

    def heartbeat(self, now_s: float) -> None:
        """A heartbeat at ``now_s`` (when it arrived); an older one never moves time back."""
        if self.last_heartbeat_s is None or now_s > self.last_heartbeat_s:
            self.last_heartbeat_s = now_s

    def seconds_until_stale(self, now_s: float) -> float | None:
        """How long the heartbeat stays fresh from ``now_s`` (0 when already stale); None
        when the dead-man is off or no heartbeat has arrived yet."""
        if self.heartbeat_timeout_s == 0 or self.last_heartbeat_s is None:
            return None
        return max(0.0, self.last_heartbeat_s + self.heartbeat_timeout_s - now_s)

    def heartbeat_ok(self, now_s: float) -> bool:
        if self.heartbeat_timeout_s == 0:
            return True
        if self.last_heartbeat_s is None:
            return False
        return now_s - self.last_heartbeat_s <= self.heartbeat_timeout_s

    def trigger_estop(self, reason: str = "e-stop") -> None:
        if not self.estop_latched:
            logger.warning("e-stop latched: %s", reason)
        self.estop_latched = True

    def reset_estop(self) -> str:
        """Clear the latch; returns a message for the reset service."""
        was = self.estop_latched
        self.estop_latched = False
        return "e-stop latch cleared" if was else "e-stop was not latched"

    def may_forward(self, now_s: float) -> tuple[bool, str]:
        """Whether a trajectory may reach the arm now, and why not."""
        if self.estop_latched:
            return False, "e-stop latched (call the reset service to clear it)"
        if not self.heartbeat_ok(now_s):
            if self.last_heartbeat_s is None:
                return False, "no operator heartbeat received yet"
            age = now_s - self.last_heartbeat_s
            return False, (
                f"operator heartbeat stale: {age:.3f} s > heartbeat_timeout_s "
                f"{self.heartbeat_timeout_s:.3f}"
            )
        return True, ""


@dataclass
class HeartbeatStats:
    """Heartbeat timing as the safety node saw it: the delay from the operator's send to
    the handling (and the part of it spent queued in the node, after the middleware
    received it), and the largest gap between two arrivals.

    ``add(sent_s, received_s, handled_s)``: one heartbeat's times on one clock. The safety
    node logs :meth:`summary` on shutdown (``benchmarks/bench_heartbeat.py`` reads it).
    """

    count: int = 0
    total_delay_s: float = 0.0
    max_delay_s: float = 0.0  # send -> handled
    max_queued_s: float = 0.0  # received -> handled
    max_gap_s: float = 0.0  # between two receptions
    last_received_s: float | None = None

    def add(self, sent_s: float, received_s: float, handled_s: float) -> None:
        delay_s = max(0.0, handled_s - sent_s)
        self.count += 1
        self.total_delay_s += delay_s
        self.max_delay_s = max(self.max_delay_s, delay_s)
        self.max_queued_s = max(self.max_queued_s, handled_s - received_s)
        if self.last_received_s is not None:
            self.max_gap_s = max(self.max_gap_s, received_s - self.last_received_s)
        self.last_received_s = received_s

    def summary(self) -> str:
        if self.count == 0:
            return "heartbeats: 0 received"
        mean_ms = 1e3 * self.total_delay_s / self.count
        return (
            f"heartbeats: {self.count} received, send-to-handling delay mean {mean_ms:.2f} ms "
            f"max {1e3 * self.max_delay_s:.2f} ms (queued in the node max "
            f"{1e3 * self.max_queued_s:.2f} ms), largest gap between arrivals "
            f"{self.max_gap_s:.3f} s"
        )
