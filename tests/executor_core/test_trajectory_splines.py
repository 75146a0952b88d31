"""joint_trajectory_controller semantics of executor_core.trajectory_control: splines at the
control rate, preemption with velocity continuity, hold, tolerances and error codes."""

from __future__ import annotations

import numpy as np
import pytest

from executor_core.chunks import sample_at_rate
from executor_core.trajectory_control import (
    GOAL_TOLERANCE_VIOLATED,
    INVALID_GOAL,
    OLD_HEADER_TIMESTAMP,
    PATH_TOLERANCE_VIOLATED,
    SUCCESSFUL,
    check_header_time,
    make_active,
    start_state,
    step_outcome,
    validate_velocities,
)
from executor_core.types import JointTrajectory

NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
RATE_HZ = 100.0
TOL = np.full(6, 0.05)
NO_PATH = np.full(6, np.inf)


def chunk(values: list[float]) -> np.ndarray:
    """A positions-only chunk moving shoulder_pan through ``values`` (others still)."""
    q = np.zeros((len(values), 6))
    q[:, 0] = values
    return q


def sampled(active, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = np.arange(t0, t1, 1.0 / RATE_HZ)
    pairs = [active.sample(t) for t in ts]
    return ts, np.array([p for p, _ in pairs]), np.array([v for _, v in pairs])


# An IDM-like chunk: 4 points at 0.1 s from the measured state, changing pace.
Q = chunk([0.05, 0.2, 0.25, 0.45])
T = np.array([0.1, 0.2, 0.3, 0.4])


def test_spline_passes_every_waypoint_and_ends_at_rest() -> None:
    active = make_active(Q, T, 10.0, np.zeros(6), TOL, NO_PATH, 1.0)
    for q, t in zip(Q, T, strict=True):
        np.testing.assert_allclose(active.desired(10.0 + t), q, atol=1e-12)
    np.testing.assert_allclose(active.desired_velocity(10.0 + T[-1] + 1e-9), 0.0)
    np.testing.assert_allclose(active.desired(99.0), Q[-1])  # holds the last point


def test_positions_only_chunks_are_upsampled_smoothly_not_linearly() -> None:
    spline = make_active(Q, T, 10.0, np.zeros(6), TOL, NO_PATH, 1.0)
    linear = make_active(Q, T, 10.0, np.zeros(6), TOL, NO_PATH, 1.0, interpolation="linear")
    _, p_s, v_s = sampled(spline, 10.0, 10.4)
    # velocity is continuous across every waypoint (linear steps by up to 1.5 rad/s there)
    for t in 10.0 + T[:-1]:
        jump_spline = spline.desired_velocity(t + 1e-7) - spline.desired_velocity(t - 1e-7)
        jump_linear = linear.desired_velocity(t + 1e-7) - linear.desired_velocity(t - 1e-7)
        assert np.abs(jump_spline).max() < 1e-4
        assert np.abs(jump_linear).max() > 0.4
    # the velocity the samples imply matches the analytic one (it is a derivative)
    implied = np.diff(p_s[:, 0]) * RATE_HZ
    np.testing.assert_allclose(implied, (v_s[:-1, 0] + v_s[1:, 0]) / 2, atol=0.02)
    # monotone waypoints: the samples never overshoot or go back
    assert np.all(np.diff(p_s[:, 0]) >= -1e-12)
    assert p_s[:, 0].max() <= Q[-1, 0] + 1e-12


def test_no_overshoot_past_a_turning_waypoint() -> None:
    q = chunk([0.3, 0.1, 0.2])
    active = make_active(q, np.array([0.2, 0.4, 0.6]), 0.0, np.zeros(6), TOL, NO_PATH, 1.0)
    _, p, _ = sampled(active, 0.0, 0.6)
    assert p[:, 0].max() <= 0.3 + 1e-12  # the peak is the waypoint, not beyond
    assert p[(p[:, 0] > 0) & (np.arange(len(p)) > 25), 0].min() >= 0.1 - 1e-12


def test_given_velocities_make_a_cubic_through_them() -> None:
    v = np.zeros((2, 6))
    v[:, 0] = [0.8, 0.0]
    active = make_active(
        chunk([0.1, 0.2]), np.array([0.2, 0.5]), 0.0, np.zeros(6), TOL, NO_PATH, 1.0, v
    )
    assert active.desired_velocity(0.2)[0] == pytest.approx(0.8)
    assert active.desired_velocity(0.0)[0] == pytest.approx(0.0)  # from rest
    assert active.desired(0.2)[0] == pytest.approx(0.1)
    code, _, parsed = validate_velocities(list(NAMES), [[0.8] + [0] * 5, [0] * 6], NAMES)
    assert code == SUCCESSFUL
    assert parsed[0, 0] == 0.8
    code, text, _ = validate_velocities(list(NAMES), [[0.1] * 6, [0.1] * 5], NAMES)
    assert code == INVALID_GOAL
    assert "point 1 has 5 velocities" in text
    assert validate_velocities(list(NAMES), [[], []], NAMES)[2] is None  # positions only


def test_preemption_keeps_position_and_velocity_continuous() -> None:
    old = make_active(chunk([1.0]), np.array([2.0]), 0.0, np.zeros(6), TOL, NO_PATH, 1.0)
    now = 0.7  # mid-motion: moving fast
    q_old, v_old = old.sample(now)
    assert v_old[0] > 0.5
    q0, v0 = start_state(old, now, measured_q_rad=q_old - 0.01)  # tracking lag ignored
    new = make_active(
        chunk([0.2]), np.array([1.0]), now, q0, TOL, NO_PATH, 1.0, start_velocity_rad_s=v0
    )
    q_new, v_new = new.sample(now + 1e-6)
    np.testing.assert_allclose(q_new, q_old, atol=1e-5)
    np.testing.assert_allclose(v_new, v_old, atol=1e-3)
    # the command stays smooth across the switch: no velocity step at the 100 Hz rate
    before = [old.sample(now - k / RATE_HZ)[1][0] for k in (2, 1)]
    after = [new.sample(now + k / RATE_HZ)[1][0] for k in (0, 1, 2)]
    assert np.abs(np.diff(before + after)).max() < 0.1
    assert new.desired(now + 1.0)[0] == pytest.approx(0.2)


def test_hold_and_a_fresh_start_begin_at_the_measured_state_at_rest() -> None:
    measured = np.array([0.1, -1.0, 0.6, 1.3, 0.0, 0.2])
    q0, v0 = start_state(None, 5.0, measured)
    np.testing.assert_array_equal(q0, measured)
    np.testing.assert_array_equal(v0, np.zeros(6))
    done = make_active(chunk([1.0]), np.array([1.0]), 0.0, np.zeros(6), TOL, NO_PATH, 1.0)
    done.outcome = (SUCCESSFUL, "")
    np.testing.assert_array_equal(start_state(done, 0.5, measured)[0], measured)


def test_tolerances_and_error_codes_on_a_spline() -> None:
    path = np.full(6, 0.02)
    active = make_active(Q, T, 10.0, np.zeros(6), TOL, path, 0.5)
    on_path = active.desired(10.25)
    assert step_outcome(active, 10.25, on_path, NAMES) is None
    code, text = step_outcome(
        active, 10.26, active.desired(10.26) + np.array([0, 0, 0.03, 0, 0, 0]), NAMES
    )
    assert code == PATH_TOLERANCE_VIOLATED
    assert "'elbow_flex' path error 0.03" in text
    fresh = make_active(Q, T, 10.0, np.zeros(6), TOL, NO_PATH, 0.5)
    assert step_outcome(fresh, 10.41, Q[-1], NAMES) == (SUCCESSFUL, "")
    late = make_active(Q, T, 10.0, np.zeros(6), TOL, NO_PATH, 0.5)
    short = Q[-1] - [0.1, 0, 0, 0, 0, 0]
    assert step_outcome(late, 10.8, short, NAMES) is None  # within goal_time_tolerance
    code, text = step_outcome(late, 10.95, short, NAMES)
    assert code == GOAL_TOLERANCE_VIOLATED
    assert "'shoulder_pan' final error 0.1" in text


def test_a_trajectory_that_ended_before_it_arrived_is_old() -> None:
    assert check_header_time(0.0, 100.0, 1.0) == (SUCCESSFUL, "")  # stamp 0: start now
    assert check_header_time(99.5, 100.0, 1.0)[0] == SUCCESSFUL  # still running
    code, text = check_header_time(90.0, 100.0, 1.0)
    assert code == OLD_HEADER_TIMESTAMP
    assert "before now" in text


def test_sample_at_rate_samples_as_the_arm_nodes_controller() -> None:
    # off-tick points, as per-interval retiming leaves them
    t = np.array([0.13, 0.29, 0.41])
    q = chunk([0.1, 0.3, 0.32])
    trajectory = JointTrajectory(NAMES, q, t)
    start = np.zeros(6)
    spline = sample_at_rate(trajectory, start, 10.0)
    linear = sample_at_rate(trajectory, start, 10.0, "linear")
    assert spline.shape == linear.shape == (5, 6)  # ceil(0.41 s * 10 Hz) ticks
    active = make_active(q, t, 0.0, start, TOL, NO_PATH, 1.0)
    expected = [active.desired(k / 10.0) for k in range(1, 5)] + [q[-1]]
    np.testing.assert_allclose(spline, np.stack(expected), atol=1e-12)
    np.testing.assert_allclose(linear[0, 0], 0.1 * 0.1 / 0.13)  # straight from the start
    assert np.abs(spline - linear).max() > 1e-3  # the two really differ off the ticks
    np.testing.assert_allclose(spline[-1], q[-1])  # the last tick holds the last point
    # points on the ticks (an IDM chunk at the rate) come back unchanged either way
    on_ticks = JointTrajectory(NAMES, Q, T)
    for how in ("spline", "linear"):
        np.testing.assert_allclose(sample_at_rate(on_ticks, start, 10.0, how), Q, atol=1e-12)
    with pytest.raises(ValueError, match="'cubic'"):
        sample_at_rate(trajectory, start, 10.0, "cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate_hz"):
        sample_at_rate(trajectory, start, 0.0)
