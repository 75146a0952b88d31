"""The grasp gate holds closings above the table open, and nothing else."""

from __future__ import annotations

import math

import numpy as np
import pytest

from executor_core.grasp_gate import GraspGate, GraspGateConfig
from executor_core.types import JointTrajectory

NAMES = ("lift", "gripper")
OPEN, SHUT = 0.7, -0.15


def height_of(q: np.ndarray) -> float:
    """A test arm whose effector height in metres is its "lift" joint's value."""
    return float(q[0])


def trajectory(lift_m: list[float], gripper_rad: list[float], **extra) -> JointTrajectory:
    positions = np.column_stack([lift_m, gripper_rad]).astype(np.float64)
    times = 0.1 * np.arange(1, len(lift_m) + 1)
    return JointTrajectory(NAMES, positions, times, **extra)


def gate(max_close_height_m: float = 0.03) -> GraspGate:
    return GraspGate(GraspGateConfig(max_close_height_m), height_of, NAMES)


def test_a_closing_high_above_the_table_is_held_open_until_the_arm_is_low() -> None:
    g = gate()
    state = g.start(np.array([0.10, OPEN]))
    out = g.apply(trajectory([0.08, 0.06, 0.04, 0.02, 0.01], [OPEN, SHUT, SHUT, SHUT, SHUT]), state)
    np.testing.assert_array_equal(out.positions_rad[:, 1], [OPEN, OPEN, OPEN, SHUT, SHUT])
    np.testing.assert_array_equal(out.positions_rad[:, 0], [0.08, 0.06, 0.04, 0.02, 0.01])
    assert state.held_points == 2
    assert state.last_command_rad == SHUT


def test_held_state_carries_into_the_next_trajectory() -> None:
    g = gate()
    state = g.start(np.array([0.10, OPEN]))
    first = g.apply(trajectory([0.09, 0.08], [SHUT, SHUT]), state)
    np.testing.assert_array_equal(first.positions_rad[:, 1], [OPEN, OPEN])
    second = g.apply(trajectory([0.05, 0.02], [SHUT, SHUT]), state)
    np.testing.assert_array_equal(second.positions_rad[:, 1], [OPEN, SHUT])
    assert state.held_points == 3


def test_closed_jaws_are_never_opened_even_when_lifted() -> None:
    # Jaws shut low around a cube, then the arm lifts: nothing changes.
    g = gate()
    state = g.start(np.array([0.02, OPEN]))
    lift = trajectory([0.02, 0.05, 0.10], [SHUT, SHUT, SHUT])
    assert g.apply(lift, state) is lift
    assert state.held_points == 0


def test_a_goal_starting_closed_opens_before_any_closing_counts() -> None:
    # The SO-101's home gripper command (0.0 rad) is below closing_rad: closed, not held.
    g = gate()
    state = g.start(np.array([0.12, 0.0]))
    out = g.apply(trajectory([0.12, 0.10, 0.09], [0.0, OPEN, SHUT]), state)
    np.testing.assert_array_equal(out.positions_rad[:, 1], [0.0, OPEN, OPEN])


def test_a_reopened_gripper_can_close_again_when_low() -> None:
    g = gate()
    state = g.start(np.array([0.02, OPEN]))
    out = g.apply(trajectory([0.02, 0.08, 0.08, 0.02], [SHUT, OPEN, SHUT, SHUT]), state)
    np.testing.assert_array_equal(out.positions_rad[:, 1], [SHUT, OPEN, OPEN, SHUT])


def test_a_held_point_stands_still_in_the_gripper_velocity() -> None:
    g = gate()
    state = g.start(np.array([0.10, OPEN]))
    velocities = np.ones((3, 2))
    out = g.apply(
        trajectory([0.08, 0.05, 0.02], [SHUT, SHUT, SHUT], velocities_rad_s=velocities), state
    )
    np.testing.assert_array_equal(out.velocities_rad_s[:, 1], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(out.velocities_rad_s[:, 0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(velocities, np.ones((3, 2)))  # the input is untouched


@pytest.mark.parametrize("height", [0.0, -0.01, math.nan, math.inf])
def test_config_rejects_a_bad_height_naming_it(height: float) -> None:
    with pytest.raises(ValueError, match=f"max_close_height_m must be > 0, got {height!r}"):
        GraspGateConfig(height)


def test_the_gripper_joint_and_trajectory_joints_must_be_the_robots() -> None:
    with pytest.raises(ValueError, match="gripper_joint 'jaw' is not one of"):
        GraspGate(GraspGateConfig(0.03, gripper_joint="jaw"), height_of, NAMES)
    g = gate()
    other = JointTrajectory(("gripper", "lift"), np.zeros((1, 2)), np.array([0.1]))
    with pytest.raises(ValueError, match="are not the robot's"):
        g.apply(other, g.start(np.array([0.1, OPEN])))


def test_measured_mode_also_waits_for_the_arm_to_be_low() -> None:
    g = GraspGate(GraspGateConfig(0.03, measured=True), height_of, NAMES)
    state = g.start(np.array([0.10, OPEN]))
    low_targets = trajectory([0.02, 0.01], [SHUT, SHUT])
    # commanded low, but the arm measured 6 cm up when the chunk was computed: held
    held = g.apply(low_targets, state, np.array([0.06, OPEN]))
    np.testing.assert_array_equal(held.positions_rad[:, 1], [OPEN, OPEN])
    # the next chunk, computed with the arm down: the jaws close
    closed = g.apply(low_targets, state, np.array([0.02, OPEN]))
    np.testing.assert_array_equal(closed.positions_rad[:, 1], [SHUT, SHUT])
    # measured low does not let a high command close
    state = g.start(np.array([0.02, OPEN]))
    high = g.apply(trajectory([0.05], [SHUT]), state, np.array([0.02, OPEN]))
    np.testing.assert_array_equal(high.positions_rad[:, 1], [OPEN])
    with pytest.raises(ValueError, match="measured mode needs the measured joints"):
        g.apply(low_targets, state)
