"""The scripted expert solves a small seeded batch of every family within 64 frames,
respecting the joint velocity limits of the robot description."""

from __future__ import annotations

import numpy as np
import pytest

from executor_sim import TASK_FAMILIES, TabletopEnv, expert_policy


@pytest.mark.parametrize("family", TASK_FAMILIES)
def test_expert_success_on_seeded_batch(env: TabletopEnv, family: str) -> None:
    successes = 0
    seeds = (11, 12, 13)
    for seed in seeds:
        env.reset(seed, task_family=family)
        policy = expert_policy(env)
        previous = env.joint_positions_rad()
        max_step = np.zeros(6)
        for _ in range(64):
            action = policy(env)
            max_step = np.maximum(max_step, np.abs(action - previous))
            previous = action
            env.step(action)
        successes += env.task.is_success(env)
        assert policy.done
        assert policy.done_step <= 64
        limit = env.robot.max_velocity_rad_s / env.cfg.fps_hz
        assert np.all(max_step <= limit + 1e-9), (max_step, limit)
    # The expert is ~90% reliable, so one miss in three is allowed (and reported).
    assert successes >= len(seeds) - 1, f"{family}: {successes}/{len(seeds)}"


def test_expert_needs_a_task() -> None:
    class NoTask:
        task = None

    with pytest.raises(ValueError, match="no task"):
        expert_policy(NoTask())  # type: ignore[arg-type]
