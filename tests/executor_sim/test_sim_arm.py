"""``SimArm``: the goal runner's simulator arm steps the trajectory's samples at the control
rate, sampled as ``sim_arm_node``'s controller samples them (splines by default)."""

from __future__ import annotations

import numpy as np
import pytest

from executor_core.chunks import sample_at_rate
from executor_core.goal_runner import Guard
from executor_core.types import JointTrajectory
from executor_sim import TabletopEnv
from executor_sim.sim_arm import SimArm


def _off_tick_move(env: TabletopEnv) -> JointTrajectory:
    q0 = env.joint_positions_rad()
    delta = np.array([0.3, -0.2, 0.2, 0.1, 0.0, 0.0])
    fractions = np.array([0.2, 0.7, 1.0])[:, None]
    times_s = np.array([0.17, 0.38, 0.55])
    return JointTrajectory(env.robot.joint_names, q0 + fractions * delta, times_s)


@pytest.mark.parametrize("interpolation", ["spline", "linear"])
def test_steps_the_controllers_samples(env: TabletopEnv, interpolation: str, monkeypatch) -> None:
    env.reset(3)
    arm = SimArm(env, interpolation=interpolation)
    move = _off_tick_move(env)
    expected = sample_at_rate(move, env.joint_positions_rad(), env.cfg.fps_hz, interpolation)
    sent: list[np.ndarray] = []
    step = env.step

    def recording_step(target: np.ndarray) -> dict:
        sent.append(np.array(target))
        return step(target)

    monkeypatch.setattr(env, "step", recording_step)
    arm.send(move, Guard(10.0, clock=arm.clock), tolerate_goal_miss=True)
    assert arm.steps == len(expected) == 6  # ceil(0.55 s * 10 Hz)
    assert len(arm.frames) == 7
    np.testing.assert_allclose(np.stack(sent), expected)


def test_spline_is_the_default_and_a_bad_value_is_named(env: TabletopEnv) -> None:
    assert SimArm(env).interpolation == "spline"  # sim_arm_node's default
    with pytest.raises(ValueError, match="'cubic'"):
        SimArm(env, interpolation="cubic")  # type: ignore[arg-type]
