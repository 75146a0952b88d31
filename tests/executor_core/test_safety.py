"""Safety checks: each rule with exact values, and the heartbeat / e-stop supervisor."""

from __future__ import annotations

import numpy as np
import pytest

from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.safety import (
    HeartbeatStats,
    SafetyConfig,
    SafetyRejectionError,
    SafetySupervisor,
    check_trajectory,
    require_safe,
)
from executor_core.types import JointTrajectory


@pytest.fixture(scope="module")
def robot() -> RobotDescription:
    return RobotDescription.from_yaml(default_robot_path())


def _ramp(robot: RobotDescription, n: int = 5, step_rad: float = 0.01, dt_s: float = 0.1):
    names = robot.joint_names
    q = np.zeros((n, len(names))) + step_rad * np.arange(1, n + 1)[:, None]
    t = dt_s * np.arange(1, n + 1)
    return names, q, t


def test_accepts_slow_ramp_from_measured_state(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot)
    report = check_trajectory(names, q, t, robot, np.zeros(6))
    assert report.ok, report.summary()
    np.testing.assert_array_equal(report.positions_rad, q)


def test_reorders_joints_into_robot_order(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot)
    q[:, 2] += 0.05  # elbow_flex differs
    rev = tuple(reversed(names))
    report = check_trajectory(rev, q[:, ::-1], t, robot, np.array([0, 0, 0.05, 0, 0, 0.0]))
    assert report.ok, report.summary()
    np.testing.assert_allclose(report.positions_rad, q)


def test_position_limit_names_joint_index_value(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot, step_rad=0.0)
    q[3, 2] = 1.75  # elbow_flex upper limit is 1.69
    report = check_trajectory(
        names, q, t, robot, np.zeros(6), config=SafetyConfig(max_start_jump_rad=0.5)
    )
    pos = [v for v in report.violations if v.rule == "position"]
    assert len(pos) == 1
    assert (pos[0].joint, pos[0].index, pos[0].value, pos[0].limit) == ("elbow_flex", 3, 1.75, 1.69)
    assert "'elbow_flex' point 3: position 1.75 rad above upper limit 1.69" in report.summary()


def test_lower_limit(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot, step_rad=0.0)
    q[:, 5] = -0.2  # gripper lower is -0.17453
    report = check_trajectory(names, q, t, robot, q[0])
    assert {(v.rule, v.joint) for v in report.violations} == {("position", "gripper")}
    assert [v.index for v in report.violations] == [0, 1, 2, 3, 4]


def test_velocity_from_positions(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot, step_rad=0.0)
    q[2:, 0] = 0.2  # 0.2 rad in 0.05 s = 4 rad/s > 3 rad/s
    t = np.array([0.1, 0.2, 0.25, 0.35, 0.45])
    report = check_trajectory(names, q, t, robot, np.zeros(6))
    vel = [v for v in report.violations if v.rule == "velocity"]
    assert [(v.joint, v.index) for v in vel] == [("shoulder_pan", 2)]
    assert vel[0].value == pytest.approx(4.0)


def test_velocity_from_measured_start(robot: RobotDescription) -> None:
    names = robot.joint_names
    q = np.zeros((1, 6))
    q[0, 1] = 0.2
    report = check_trajectory(names, q, np.array([0.05]), robot, np.zeros(6))
    assert [(v.rule, v.joint, v.index) for v in report.violations] == [
        ("velocity", "shoulder_lift", 0)
    ]
    assert report.violations[0].value == pytest.approx(4.0)


def test_commanded_velocity(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot)
    v = np.zeros_like(q)
    v[1, 4] = -3.5
    report = check_trajectory(names, q, t, robot, np.zeros(6), velocities_rad_s=v)
    assert [(r.rule, r.joint, r.index, r.value) for r in report.violations] == [
        ("velocity", "wrist_roll", 1, -3.5)
    ]


def test_acceleration(robot: RobotDescription) -> None:
    names = robot.joint_names
    # 0 rad/s then 2.5 rad/s over segments of 0.1 s -> 25 rad/s^2 > 20 at point 1.
    q = np.zeros((3, 6))
    q[2, 3] = 0.25
    report = check_trajectory(names, q, np.array([0.1, 0.2, 0.3]), robot, np.zeros(6))
    acc = [v for v in report.violations if v.rule == "acceleration"]
    assert [(v.joint, v.index) for v in acc] == [("wrist_flex", 1)]
    assert acc[0].value == pytest.approx(25.0)


def test_non_finite_rejected(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot)
    q[1, 0] = np.nan
    q[4, 5] = np.inf
    report = check_trajectory(names, q, t, robot, np.zeros(6))
    assert [(v.rule, v.joint, v.index) for v in report.violations] == [
        ("non_finite", "shoulder_pan", 1),
        ("non_finite", "gripper", 4),
    ]
    t2 = t.copy()
    t2[2] = np.nan
    _, q2, _ = _ramp(robot)
    assert check_trajectory(names, q2, t2, robot, np.zeros(6)).violations[0].index == 2


def test_start_jump(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot, step_rad=0.0)
    current = np.zeros(6)
    current[2] = -0.3  # first point 0.0 -> jump 0.3 > 0.25; 3 rad/s over 0.1 s is allowed
    report = check_trajectory(names, q, t, robot, current)
    jumps = [v for v in report.violations if v.rule == "start_jump"]
    assert [(v.joint, v.index) for v in jumps] == [("elbow_flex", 0)]
    assert "jump 0.3 rad" in jumps[0].message


def test_joint_names(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot)
    bad = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "claw")
    report = check_trajectory(bad, q, t, robot, np.zeros(6))
    msgs = report.summary()
    assert "unknown joints ['claw']" in msgs
    assert "missing joints ['gripper']" in msgs
    dup = (*names[:5], "shoulder_pan")
    assert (
        "duplicate joint names ['shoulder_pan']"
        in check_trajectory(dup, q, t, robot, np.zeros(6)).summary()
    )


def test_time_must_increase_and_state_known(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot)
    t[3] = t[2]
    report = check_trajectory(names, q, t, robot, np.zeros(6))
    assert [(v.rule, v.index) for v in report.violations] == [("time", 3)]
    _, q, t = _ramp(robot)
    report = check_trajectory(names, q, t, robot, None)
    assert [v.rule for v in report.violations] == ["current_state"]
    relaxed = SafetyConfig(require_current_state=False)
    assert check_trajectory(names, q, t, robot, None, config=relaxed).ok


def test_require_safe_raises_with_report(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot)
    q[0, 0] = 5.0
    traj = JointTrajectory(names, q, t)
    with pytest.raises(SafetyRejectionError, match="'shoulder_pan' point 0") as info:
        require_safe(traj, robot, np.zeros(6), SafetyConfig(max_start_jump_rad=10))
    assert not info.value.report.ok


def test_config_validation_quotes_value() -> None:
    with pytest.raises(ValueError, match=r"-1\.0"):
        SafetyConfig(max_start_jump_rad=-1.0)


def test_supervisor_heartbeat_and_latch() -> None:
    sup = SafetySupervisor(heartbeat_timeout_s=0.5)
    assert sup.may_forward(10.0) == (False, "no operator heartbeat received yet")
    sup.heartbeat(10.0)
    assert sup.may_forward(10.5) == (True, "")
    ok, why = sup.may_forward(10.75)
    assert not ok
    assert "0.750 s > heartbeat_timeout_s 0.500" in why
    sup.heartbeat(11.0)
    sup.trigger_estop("test")
    assert sup.may_forward(11.1)[0] is False
    sup.heartbeat(11.2)  # a heartbeat does not clear the e-stop
    assert "e-stop latched" in sup.may_forward(11.2)[1]
    assert sup.reset_estop() == "e-stop latch cleared"
    assert sup.may_forward(11.2) == (True, "")
    assert sup.reset_estop() == "e-stop was not latched"
    assert SafetySupervisor(heartbeat_timeout_s=0).may_forward(0.0) == (True, "")


def test_start_jump_exempt_joint_is_still_velocity_checked(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot, step_rad=0.0)
    q[:, 5] = -0.15  # gripper commanded shut while measured open at 0.55 (squeezing a cube)
    t = t + 0.2  # first point at 0.3 s: 0.7 rad in 0.3 s is under the 3 rad/s limit
    current = np.array([0, 0, 0, 0, 0, 0.55])
    strict = check_trajectory(names, q, t, robot, current)
    assert [(v.rule, v.joint) for v in strict.violations] == [("start_jump", "gripper")]
    exempt = SafetyConfig(start_jump_exempt_joints=("gripper",))
    assert check_trajectory(names, q, t, robot, current, config=exempt).ok
    fast = check_trajectory(names, q, t - 0.2, robot, current, config=exempt)  # 7 rad/s
    assert ("velocity", "gripper") in [(v.rule, v.joint) for v in fast.violations]
    assert all(v.rule != "start_jump" for v in fast.violations)


def test_first_point_at_time_zero_must_be_the_measured_state(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot, step_rad=0.0)
    t = t - t[0]  # first point at t=0
    q[0, 0] = 0.95  # shoulder_pan +0.95 rad now: infinite implied velocity
    loose = SafetyConfig(max_start_jump_rad=1.0)  # the start-jump check alone lets it pass
    report = check_trajectory(names, q, t, robot, np.zeros(6), config=loose)
    zero = [v for v in report.violations if v.rule == "zero_time_start"]
    assert [(v.joint, v.index, v.value, v.limit) for v in zero] == [("shoulder_pan", 0, 0.95, 0.01)]
    assert "jump 0.95 rad" in zero[0].message
    assert "zero_time_start_tolerance_rad 0.01" in zero[0].message
    # Also under the default max_start_jump_rad (0.25): 0.2 rad at t=0 is no start jump.
    q[0, 0] = 0.2
    report = check_trajectory(names, q, t, robot, np.zeros(6))
    assert [(v.rule, v.joint) for v in report.violations] == [("zero_time_start", "shoulder_pan")]


def test_first_point_at_time_zero_within_tolerance_passes(robot: RobotDescription) -> None:
    names, q, t = _ramp(robot, step_rad=0.01)
    q = np.vstack([np.zeros((1, 6)), q])
    t = np.concatenate([[0.0], t])
    current = np.full(6, 0.005)  # 5 mrad from the first point, tolerance 10 mrad
    assert check_trajectory(names, q, t, robot, current).ok
    exempt = SafetyConfig(start_jump_exempt_joints=("gripper",))
    current[5] = 0.3  # an exempt joint still may not jump at t=0
    report = check_trajectory(names, q, t, robot, current, config=exempt)
    assert [(v.rule, v.joint) for v in report.violations] == [("zero_time_start", "gripper")]
    exact = SafetyConfig(zero_time_start_tolerance_rad=0.0)
    assert check_trajectory(names, q, t, robot, np.zeros(6), config=exact).ok


def test_zero_time_start_tolerance_validation_quotes_value() -> None:
    with pytest.raises(ValueError, match=r"zero_time_start_tolerance_rad.*-0\.1"):
        SafetyConfig(zero_time_start_tolerance_rad=-0.1)


def test_supervisor_deadline_and_late_heartbeats() -> None:
    sup = SafetySupervisor(heartbeat_timeout_s=0.5)
    assert sup.seconds_until_stale(10.0) is None  # no heartbeat yet
    sup.heartbeat(10.0)
    assert sup.seconds_until_stale(10.2) == pytest.approx(0.3)
    assert sup.seconds_until_stale(11.0) == 0.0
    sup.heartbeat(9.8)  # handled late, received earlier: time never moves back
    assert sup.last_heartbeat_s == 10.0
    assert SafetySupervisor(heartbeat_timeout_s=0).seconds_until_stale(0.0) is None


def test_heartbeat_stats_delay_and_gap() -> None:
    stats = HeartbeatStats()
    assert stats.summary() == "heartbeats: 0 received"
    stats.add(0.999, 1.0, 1.001)  # sent, received, handled
    stats.add(1.09, 1.1, 1.105)
    stats.add(1.5, 1.5, 1.5)
    assert stats.count == 3
    assert stats.max_delay_s == pytest.approx(0.015)
    assert stats.max_queued_s == pytest.approx(0.005)
    assert stats.max_gap_s == pytest.approx(0.4)
    assert stats.summary() == (
        "heartbeats: 3 received, send-to-handling delay mean 5.67 ms max 15.00 ms "
        "(queued in the node max 5.00 ms), largest gap between arrivals 0.400 s"
    )
