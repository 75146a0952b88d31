import numpy as np
import pytest

from executor_core.retiming import retime_to_limits, time_scale_factor, within_position_limits
from executor_core.robot_description import JointSpec, RobotDescription, default_robot_path
from executor_core.safety import check_joint_trajectory
from executor_core.types import JointTrajectory

ROBOT = RobotDescription("two", (JointSpec("a", -3, 3, 1.0, 2.0), JointSpec("b", -3, 3, 1.0, 2.0)))


def _traj(q: np.ndarray, dt: float = 0.1) -> JointTrajectory:
    return JointTrajectory(("a", "b"), q, dt * np.arange(1, len(q) + 1))


def test_velocity_bound_gives_the_closed_form_factor():
    # 0.2 rad per 0.1 s = 2 rad/s constant after the start: k_v = 2 / (0.9 * 1)
    q = np.stack([0.2 * np.arange(1, 6), np.zeros(5)], axis=1)
    k = time_scale_factor(_traj(q), ROBOT, np.zeros(2), margin=0.9)
    assert k == pytest.approx(2 / 0.9)


def test_acceleration_spike_is_slowed_until_safety_accepts():
    rng = np.random.default_rng(0)
    q = np.cumsum(rng.normal(0, 0.05, size=(30, 2)), axis=0)
    q[15] += 0.15  # a jittery imagined frame
    traj = _traj(q)
    start = np.zeros(2)
    assert not check_joint_trajectory(traj, ROBOT, start).ok
    slow = retime_to_limits(traj, ROBOT, start)
    assert np.array_equal(slow.positions_rad, traj.positions_rad)  # path kept exactly
    k = slow.time_from_start_s[-1] / traj.time_from_start_s[-1]
    assert k > 1
    assert float(slow.metadata["time_scale"]) == pytest.approx(k, rel=1e-3)
    assert np.allclose(slow.time_from_start_s, traj.time_from_start_s * k)  # uniform stretch
    assert check_joint_trajectory(slow, ROBOT, start).ok
    # the margin is what costs the extra time: without it the stretch is smaller
    tight = retime_to_limits(traj, ROBOT, start, margin=1.0)
    assert tight.time_from_start_s[-1] < slow.time_from_start_s[-1]


def test_feasible_trajectory_is_returned_unchanged():
    q = np.stack([0.01 * np.arange(1, 6), np.zeros(5)], axis=1)
    traj = _traj(q)
    assert retime_to_limits(traj, ROBOT, np.zeros(2)) is traj


def test_bad_margin_and_joint_mismatch():
    traj = _traj(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"1\.5"):
        time_scale_factor(traj, ROBOT, margin=1.5)
    other = JointTrajectory(("x", "y"), np.zeros((3, 2)), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="'x'"):
        time_scale_factor(other, ROBOT)


def test_within_position_limits_moves_near_misses_and_refuses_the_rest() -> None:
    robot = RobotDescription.from_yaml(default_robot_path())
    q = np.tile(robot.home_rad, (3, 1))
    q[1, 5] = robot.lower_rad[5] - 0.014  # a gripper squeeze predicted a little too far
    traj = JointTrajectory(robot.joint_names, q, np.array([0.1, 0.2, 0.3]))
    fixed = within_position_limits(traj, robot, tolerance_rad=0.05)
    assert fixed.positions_rad[1, 5] == robot.lower_rad[5]
    np.testing.assert_array_equal(np.delete(fixed.positions_rad, 5, 1), np.delete(q, 5, 1))
    assert fixed.metadata["limited_targets"] == "1"
    assert within_position_limits(fixed, robot) is fixed  # already inside: unchanged
    q[2, 2] = robot.upper_rad[2] + 0.3
    far = JointTrajectory(robot.joint_names, q, np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match=r"'elbow_flex' point 2: target 1\.99"):
        within_position_limits(far, robot, tolerance_rad=0.05)
