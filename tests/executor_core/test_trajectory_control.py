"""joint_trajectory_controller rules, pure: validation codes, tolerances, interpolation,
the per-tick path and goal verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from executor_core.trajectory_control import (
    GOAL_TOLERANCE_VIOLATED,
    INVALID_GOAL,
    INVALID_JOINTS,
    PATH_TOLERANCE_VIOLATED,
    SUCCESSFUL,
    make_active,
    step_outcome,
    tolerance_vector,
    validate_trajectory,
)

NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
LOWER = np.full(6, -1.5)
UPPER = np.full(6, 1.5)


def test_validate_trajectory_codes_and_reordering() -> None:
    code, text, q = validate_trajectory(
        list(NAMES[::-1]), [[0, 0, 0, 0, 0, 0.3]], [0.5], NAMES, LOWER, UPPER
    )
    assert (code, text) == (SUCCESSFUL, "")
    assert q[0].tolist() == [0.3, 0, 0, 0, 0, 0]  # reordered into robot order
    code, text, _ = validate_trajectory(["a", *NAMES[1:]], [[0] * 6], [0.5], NAMES, LOWER, UPPER)
    assert code == INVALID_JOINTS
    assert "'a'" in text
    assert validate_trajectory(list(NAMES), [], [], NAMES, LOWER, UPPER)[:2] == (
        INVALID_GOAL,
        "trajectory has no points",
    )
    code, text, _ = validate_trajectory(
        list(NAMES), [[0] * 6, [0] * 6], [0.5, 0.5], NAMES, LOWER, UPPER
    )
    assert code == INVALID_GOAL
    assert "increasing" in text
    code, text, _ = validate_trajectory(
        list(NAMES), [[0, 0, 2.0, 0, 0, 0]], [0.5], NAMES, LOWER, UPPER
    )
    assert code == INVALID_GOAL
    assert text == "joint 'elbow_flex' point 0: 2 rad outside [-1.5, 1.5]"


def test_tolerance_vector_zero_default_negative_off() -> None:
    tol = tolerance_vector(
        [("elbow_flex", 0.2), ("wrist_flex", -1.0), ("gripper", 0.0)], NAMES, default_rad=0.05
    )
    assert tol.tolist() == [0.05, 0.05, 0.2, np.inf, 0.05, 0.05]
    assert np.all(np.isinf(tolerance_vector([], NAMES, default_rad=0.0)))


def test_interpolation_and_outcomes() -> None:
    q = np.zeros((1, 6))
    q[0, 0] = 1.0
    active = make_active(
        q, np.array([2.0]), 10.0, np.zeros(6), np.full(6, 0.05), np.full(6, 0.1), 0.5
    )
    assert active.desired(11.0)[0] == pytest.approx(0.5)  # halfway from the measured start
    assert active.desired(99.0)[0] == pytest.approx(1.0)
    assert step_outcome(active, 11.0, active.desired(11.0), NAMES) is None
    off = active.desired(11.0)
    off[3] += 0.2
    code, text = step_outcome(active, 11.0, off, NAMES)
    assert code == PATH_TOLERANCE_VIOLATED
    assert "'wrist_flex' path error 0.2 rad > tolerance 0.1" in text
    assert step_outcome(active, 12.1, q[0], NAMES) == (SUCCESSFUL, "")
    short = q[0] - np.array([0.1, 0, 0, 0, 0, 0])
    assert step_outcome(active, 12.3, short, NAMES) is None  # within goal_time_tolerance
    code, text = step_outcome(active, 12.6, short, NAMES)
    assert code == GOAL_TOLERANCE_VIOLATED
    assert "'shoulder_pan' final error 0.1 rad > goal tolerance 0.05" in text


def test_path_is_checked_even_when_the_first_tick_comes_after_the_end() -> None:
    # a loaded machine can stall the control timer past a short trajectory's end
    q = np.zeros((1, 6))
    q[0, 0] = 0.6
    active = make_active(
        q, np.array([0.3]), 10.0, np.zeros(6), np.full(6, 0.05), np.full(6, 0.01), 1.0
    )
    code, text = step_outcome(active, 10.5, np.zeros(6), NAMES)
    assert code == PATH_TOLERANCE_VIOLATED
    assert "'shoulder_pan' path error 0.6 rad" in text
    assert "t=0.300 s" in text
    # once the path was seen, a late arrival is a goal matter again
    on_path = make_active(
        q, np.array([0.3]), 10.0, np.zeros(6), np.full(6, 0.05), np.full(6, 0.01), 1.0
    )
    assert step_outcome(on_path, 10.5, q[0], NAMES) == (SUCCESSFUL, "")
    assert on_path.path_checked_s == 10.3
    # a tick early in the trajectory, then a stall past its end: the end point is checked
    stalled = make_active(
        q, np.array([0.3]), 10.0, np.zeros(6), np.full(6, 0.05), np.full(6, 0.01), 1.0
    )
    assert step_outcome(stalled, 10.0, np.zeros(6), NAMES) is None
    code, text = step_outcome(stalled, 10.6, np.array([0.2, 0, 0, 0, 0, 0]), NAMES)
    assert code == PATH_TOLERANCE_VIOLATED
    assert "t=0.300 s" in text
