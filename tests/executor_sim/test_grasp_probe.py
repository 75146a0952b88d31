"""``GraspProbe``: where the jaws are when they close, against the task's cube. The scripted
expert's grasp closes on the cube's centre; an arm that closes elsewhere is measured as far
off as it is, once per closing command; push tasks record nothing."""

from __future__ import annotations

import numpy as np
import pytest

from executor_sim import TabletopEnv, expert_policy
from executor_sim.expert import FIXED_PAD_TO_GRASP_M
from executor_sim.grasp_probe import GraspProbe
from executor_sim.kinematics import TopDownIK


def _run_expert(env: TabletopEnv, probe: GraspProbe, steps: int = 64) -> None:
    policy = expert_policy(env)
    for _ in range(steps):
        target = policy(env)
        probe.before_step(target)
        env.step(target)


@pytest.mark.parametrize("family", ["pick_place", "stack"])
def test_the_expert_closes_on_the_cube(env: TabletopEnv, family: str) -> None:
    for seed in (11, 12):
        env.reset(seed, task_family=family)
        probe = GraspProbe(env, env.task)
        _run_expert(env, probe)
        # the grasp, then (after the release) the jaws shut on the way home, above the cube
        assert len(probe.attempts) == 2, probe.attempts
        assert probe.attempts[0]["xy_mm"] < 3.0, probe.attempts
        assert abs(probe.attempts[0]["z_mm"]) < 15.0, probe.attempts
        assert probe.attempts[1]["z_mm"] > 30.0, probe.attempts
        # it comes down to the cube with the jaws open: the nearest approach is the grasp
        assert probe.nearest_open is not None
        assert probe.nearest_open["distance_mm"] < 10.0, probe.nearest_open


def test_a_push_records_nothing(env: TabletopEnv) -> None:
    env.reset(11, task_family="push")
    probe = GraspProbe(env, env.task)
    _run_expert(env, probe)
    assert not probe.active
    assert probe.attempts == []
    assert probe.nearest_open is None


def test_jaws_closing_away_from_the_cube_are_measured(env: TabletopEnv) -> None:
    env.reset(13, task_family="pick_place")
    probe = GraspProbe(env, env.task)
    target = env.joint_positions_rad()
    target[5] = 0.7  # open the jaws where the arm is, far from the cube
    for _ in range(10):
        probe.before_step(target)
        env.step(target)
    assert probe.attempts == []  # opening is not a grasp
    assert probe.nearest_open is not None
    assert probe.nearest_open["xy_mm"] > 50.0  # open jaws, far from the cube all along
    closing = target.copy()
    closing[5] = -0.15
    probe.before_step(closing)
    ik = TopDownIK(
        env.model, env.lower_rad, env.upper_rad, fixed_pad_to_grasp_m=FIXED_PAD_TO_GRASP_M
    )
    point, _, _ = ik.forward(env.joint_positions_rad()[:5], False)
    expected_mm = 1000.0 * np.linalg.norm((point - env.object_position(env.task.obj))[:2])
    assert len(probe.attempts) == 1
    assert probe.attempts[0]["xy_mm"] == pytest.approx(expected_mm)
    assert probe.attempts[0]["xy_mm"] > 50.0
    env.step(closing)
    for _ in range(5):  # jaws told to stay shut: no new attempt
        probe.before_step(closing)
        env.step(closing)
    assert len(probe.attempts) == 1
    for command in (target, closing):  # opened again, then shut again: a second attempt
        probe.before_step(command)
        env.step(command)
    assert len(probe.attempts) == 2
    assert probe.attempts[1]["xy_mm"] > 50.0
