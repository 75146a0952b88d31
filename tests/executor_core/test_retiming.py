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


# -- the per_interval profile
SO101 = RobotDescription.from_yaml(default_robot_path())


def _so101_chunk(
    rng: np.random.Generator, n: int, step_rad: float
) -> tuple[np.ndarray, np.ndarray]:
    """(start, positions): a smooth walk from home, inside the joint ranges."""
    start = SO101.home_rad.copy()
    q = start + np.cumsum(rng.normal(0, step_rad, size=(n, len(start))), axis=0)
    return start, np.clip(q, SO101.lower_rad, SO101.upper_rad)


def test_per_interval_stretches_only_around_a_spike():
    start = SO101.home_rad.copy()
    q = np.tile(start, (8, 1))
    q[:, 0] += 0.01 * np.arange(1, 9)  # a slow, feasible pan
    q[4:, 1] += 0.25  # a jump of the lift between points 3 and 4
    traj = JointTrajectory(SO101.joint_names, q, 0.1 * np.arange(1, 9))
    assert not check_joint_trajectory(traj, SO101, start).ok
    uniform = retime_to_limits(traj, SO101, start, profile="uniform")
    fast = retime_to_limits(traj, SO101, start, profile="per_interval")
    for out in (uniform, fast):
        assert check_joint_trajectory(out, SO101, start).ok
        assert np.array_equal(out.positions_rad, traj.positions_rad)
    dt = np.diff(np.concatenate([[0.0], fast.time_from_start_s]))
    assert np.allclose(dt[:2], 0.1)  # far from the jump: as imagined
    assert np.allclose(dt[-2:], 0.1)
    assert dt[4] > 0.1  # the jump's own interval is slower
    assert fast.duration_s < uniform.duration_s - 0.05  # 0.85 s against 0.94 s
    assert fast.metadata["retime_profile"] == "per_interval"
    scale = fast.duration_s / traj.duration_s
    assert float(fast.metadata["time_scale"]) == pytest.approx(scale, rel=1e-3)


@pytest.mark.parametrize("seed", range(40))
def test_per_interval_is_feasible_exact_and_never_slower_than_uniform(seed):
    rng = np.random.default_rng(seed)
    start, q = _so101_chunk(rng, int(rng.integers(2, 30)), float(rng.uniform(0.005, 0.06)))
    traj = JointTrajectory(SO101.joint_names, q, 0.1 * np.arange(1, len(q) + 1))
    uniform = retime_to_limits(traj, SO101, start, profile="uniform")
    fast = retime_to_limits(traj, SO101, start, profile="per_interval")
    rules = {v.rule for v in check_joint_trajectory(fast, SO101, start).violations}
    assert rules <= {"start_jump"}  # a big first step is the safety layer's to refuse
    assert np.array_equal(fast.positions_rad, traj.positions_rad)
    assert np.all(np.diff(fast.time_from_start_s) > 0)
    assert fast.duration_s <= uniform.duration_s + 1e-12
    assert fast.duration_s >= traj.duration_s


def test_per_interval_without_a_start_state():
    rng = np.random.default_rng(3)
    _, q = _so101_chunk(rng, 12, 0.05)
    traj = JointTrajectory(SO101.joint_names, q, 0.1 * np.arange(0, 12))  # t0 = 0
    fast = retime_to_limits(traj, SO101, None, profile="per_interval")
    assert fast.time_from_start_s[0] == 0.0
    assert time_scale_factor(traj, SO101, None) > 1.0
    assert time_scale_factor(fast, SO101, None) == 1.0  # within the (margin) limits


def test_per_interval_with_given_velocities_falls_back_to_uniform():
    rng = np.random.default_rng(4)
    start, q = _so101_chunk(rng, 10, 0.05)
    t = 0.1 * np.arange(1, 11)
    v = np.gradient(q, t, axis=0)
    traj = JointTrajectory(SO101.joint_names, q, t, velocities_rad_s=v)
    out = retime_to_limits(traj, SO101, start, profile="per_interval")
    k = out.time_from_start_s[-1] / t[-1]
    assert np.allclose(out.time_from_start_s, t * k)  # uniform: derivatives stay consistent
    assert np.allclose(out.velocities_rad_s, v / k)


def test_unknown_profile_is_named():
    traj = _traj(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="'smooth'"):
        retime_to_limits(traj, ROBOT, profile="smooth")
