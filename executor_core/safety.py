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


@dataclass(frozen=True)
class SafetyConfig:
    """Checks beyond the robot description's per-joint limits."""

    max_start_jump_rad: float = 0.25  # |first point - measured position| per joint
    # Joints whose first point may be any distance from the measured position (still
    # velocity-checked from it): a gripper squeezing an object is commanded past where
    # the object stops it, so its command and its measurement legitimately disagree.
    start_jump_exempt_joints: tuple[str, ...] = ()
    require_current_state: bool = True  # reject when no joint state has been measured
    max_violations_reported: int = 5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_start_jump_rad) and self.max_start_jump_rad > 0):
            raise ValueError(f"max_start_jump_rad must be > 0, got {self.max_start_jump_rad!r}")
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


def _check_joint_names(names: tuple[str, ...], robot: RobotDescription) -> list[Violation]:
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

    Velocity and acceleration are checked both as given (if the trajectory carries
    velocities) and as implied by the positions: finite differences between consecutive
    points, starting from the measured position at t=0 when it is known.
    """
    config = config or SafetyConfig()
    names = tuple(joint_names)
    violations = _check_joint_names(names, robot)
    if violations:
        return SafetyReport(tuple(violations))

    q = np.asarray(positions_rad, dtype=np.float64)
    t = np.asarray(time_from_start_s, dtype=np.float64)
    n_joints = len(names)
    if q.ndim != 2 or q.shape[1] != n_joints or q.shape[0] == 0:
        return SafetyReport(
            (Violation("shape", f"positions must be (N>0, {n_joints}), got {q.shape!r}"),)
        )
    if t.shape != (q.shape[0],):
        return SafetyReport(
            (Violation("shape", f"time_from_start must be ({q.shape[0]},), got {t.shape!r}"),)
        )
    v_given = None
    if velocities_rad_s is not None and np.asarray(velocities_rad_s).size > 0:
        v_given = np.asarray(velocities_rad_s, dtype=np.float64)
        if v_given.shape != q.shape:
            return SafetyReport(
                (Violation("shape", f"velocities must be {q.shape!r}, got {v_given.shape!r}"),)
            )

    # Reorder columns into the robot's joint order so limits line up.
    order = [names.index(n) for n in robot.joint_names]
    q = q[:, order]
    if v_given is not None:
        v_given = v_given[:, order]
    robot_names = robot.joint_names

    for label, arr in (("position", q), ("velocity", v_given)):
        if arr is None:
            continue
        bad = np.argwhere(~np.isfinite(arr))
        for i, j in bad[: config.max_violations_reported]:
            violations.append(
                Violation(
                    "non_finite",
                    f"joint {robot_names[j]!r} point {i}: {label} is {arr[i, j]!r}",
                    robot_names[j],
                    int(i),
                    float(arr[i, j]),
                )
            )
    bad_t = np.flatnonzero(~np.isfinite(t))
    for i in bad_t[: config.max_violations_reported]:
        violations.append(
            Violation(
                "non_finite",
                f"point {i}: time_from_start is {t[i]!r}",
                index=int(i),
                value=float(t[i]),
            )
        )
    if violations:
        return SafetyReport(tuple(violations))

    if t[0] < 0:
        violations.append(
            Violation(
                "time",
                f"point 0: time_from_start {t[0]!r} s is negative",
                index=0,
                value=float(t[0]),
            )
        )
    for i in np.flatnonzero(np.diff(t) <= 0)[: config.max_violations_reported]:
        violations.append(
            Violation(
                "time",
                f"point {i + 1}: time_from_start {t[i + 1]!r} s not after {t[i]!r} s",
                index=int(i + 1),
                value=float(t[i + 1]),
            )
        )
    if violations:
        return SafetyReport(tuple(violations))

    lower, upper = robot.lower_rad, robot.upper_rad
    for i, j in np.argwhere(q < lower)[: config.max_violations_reported]:
        violations.append(
            Violation(
                "position",
                f"joint {robot_names[j]!r} point {i}: position {q[i, j]:.6g} rad below "
                f"lower limit {lower[j]:.6g} rad",
                robot_names[j],
                int(i),
                float(q[i, j]),
                float(lower[j]),
            )
        )
    for i, j in np.argwhere(q > upper)[: config.max_violations_reported]:
        violations.append(
            Violation(
                "position",
                f"joint {robot_names[j]!r} point {i}: position {q[i, j]:.6g} rad above "
                f"upper limit {upper[j]:.6g} rad",
                robot_names[j],
                int(i),
                float(q[i, j]),
                float(upper[j]),
            )
        )

    current = None
    if current_positions_rad is not None:
        current = np.asarray(current_positions_rad, dtype=np.float64)
        if current.shape != (len(robot_names),) or not np.all(np.isfinite(current)):
            violations.append(
                Violation(
                    "current_state",
                    f"measured joint state {current!r} is not a finite "
                    f"({len(robot_names)},) vector",
                )
            )
            current = None
        else:
            jump = np.abs(q[0] - current)
            exempt = np.isin(robot_names, config.start_jump_exempt_joints)
            too_far = (jump > config.max_start_jump_rad * (1 + _REL_SLACK)) & ~exempt
            for j in np.flatnonzero(too_far):
                violations.append(
                    Violation(
                        "start_jump",
                        f"joint {robot_names[j]!r} point 0: jump {jump[j]:.6g} rad "
                        f"from measured {current[j]:.6g} rad exceeds max_start_jump_rad "
                        f"{config.max_start_jump_rad:.6g}",
                        robot_names[j],
                        0,
                        float(q[0, j]),
                        config.max_start_jump_rad,
                    )
                )
    elif config.require_current_state:
        violations.append(
            Violation(
                "current_state",
                "no measured joint state yet (joint_states not received); "
                "cannot check the jump to the first point",
            )
        )

    violations.extend(_check_dynamics(q, t, current, v_given, robot, config))
    if violations:
        return SafetyReport(tuple(violations))
    return SafetyReport((), positions_rad=q)


def _check_dynamics(
    q: np.ndarray,  # (N, J) robot order
    t: np.ndarray,  # (N,)
    current: np.ndarray | None,  # (J,)
    v_given: np.ndarray | None,  # (N, J)
    robot: RobotDescription,
    config: SafetyConfig,
) -> list[Violation]:
    names = robot.joint_names
    vmax, amax = robot.max_velocity_rad_s, robot.max_acceleration_rad_s2
    out: list[Violation] = []
    # Implied segment velocities; segment k ends at point k. With a measured start the
    # first segment runs from (t=0, current) to point 0 (if point 0 is not at t=0).
    if current is not None and t[0] > 0:
        q_ext = np.vstack([current[None], q])
        t_ext = np.concatenate([[0.0], t])
        first_point = 0
    else:
        q_ext, t_ext, first_point = q, t, 1
    dt = np.diff(t_ext)  # (S,)
    v_seg = np.diff(q_ext, axis=0) / dt[:, None]  # (S, J)
    for k, j in np.argwhere(np.abs(v_seg) > vmax * (1 + _REL_SLACK))[
        : config.max_violations_reported
    ]:
        out.append(
            Violation(
                "velocity",
                f"joint {names[j]!r} point {k + first_point}: velocity "
                f"{v_seg[k, j]:.6g} rad/s exceeds limit {vmax[j]:.6g} rad/s",
                names[j],
                int(k + first_point),
                float(v_seg[k, j]),
                float(vmax[j]),
            )
        )
    if v_given is not None:
        for i, j in np.argwhere(np.abs(v_given) > vmax * (1 + _REL_SLACK))[
            : config.max_violations_reported
        ]:
            out.append(
                Violation(
                    "velocity",
                    f"joint {names[j]!r} point {i}: commanded velocity "
                    f"{v_given[i, j]:.6g} rad/s exceeds limit {vmax[j]:.6g} rad/s",
                    names[j],
                    int(i),
                    float(v_given[i, j]),
                    float(vmax[j]),
                )
            )
    if v_seg.shape[0] >= 2:
        # Acceleration between consecutive segments, over the distance of their midpoints.
        mid_dt = 0.5 * (dt[1:] + dt[:-1])
        a = np.diff(v_seg, axis=0) / mid_dt[:, None]  # (S-1, J), at point k+first_point
        for k, j in np.argwhere(np.abs(a) > amax * (1 + _REL_SLACK))[
            : config.max_violations_reported
        ]:
            out.append(
                Violation(
                    "acceleration",
                    f"joint {names[j]!r} point {k + first_point}: acceleration "
                    f"{a[k, j]:.6g} rad/s^2 exceeds limit {amax[j]:.6g} rad/s^2",
                    names[j],
                    int(k + first_point),
                    float(a[k, j]),
                    float(amax[j]),
                )
            )
    return out


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
        self.last_heartbeat_s = now_s

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
