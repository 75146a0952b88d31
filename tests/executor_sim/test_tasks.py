"""Success predicates against hand-placed states: true and false cases per family."""

from __future__ import annotations

import numpy as np
import pytest

from executor_sim import TabletopEnv, make_task
from executor_sim import scene as sc

H = sc.CUBE_HALF_M


def _settle(env: TabletopEnv, steps: int = 3) -> None:
    for _ in range(steps):
        env.step(env.home_rad)


def _park_other_cubes(env: TabletopEnv, keep: tuple[str, ...]) -> None:
    for i, c in enumerate(sc.CUBE_COLORS):
        if c not in keep:
            env.set_object_pose(c, np.array([1.0 + 0.1 * i, 1.0, -0.5]))


@pytest.fixture
def placed(env: TabletopEnv) -> TabletopEnv:
    env.reset(0)
    _park_other_cubes(env, ("red", "blue"))
    env.set_object_pose("bowl", np.array([0.2, 0.12, 0.0]))
    env.set_object_pose("mat", np.array([0.2, -0.12, 0.0]))
    env.set_object_pose("red", np.array([0.25, 0.0, H]))
    env.set_object_pose("blue", np.array([0.18, 0.02, H]))
    return env


def test_pick_place_predicate(placed: TabletopEnv) -> None:
    env = placed
    task = make_task("pick_place", "red", "bowl", env.scene)
    _settle(env)
    assert not task.is_success(env)  # on the table next to the bowl
    env.set_object_pose("red", np.array([0.2, 0.12, 0.004 + H + 0.001]))
    _settle(env)
    assert task.is_success(env)
    # On the rim, not inside: false.
    env.set_object_pose("red", np.array([0.2 + sc.BOWL_RADIUS_M, 0.12, 0.06]))
    _settle(env, 1)
    assert not task.is_success(env)
    # Wrong cube in the bowl: the task about red stays false.
    env.set_object_pose("red", np.array([0.25, 0.0, H]))
    env.set_object_pose("blue", np.array([0.2, 0.12, 0.004 + H + 0.001]))
    _settle(env)
    assert not task.is_success(env)


def test_push_predicate(placed: TabletopEnv) -> None:
    env = placed
    task = make_task("push", "red", "mat", env.scene)
    _settle(env)
    assert not task.is_success(env)
    env.set_object_pose("red", np.array([0.2 + 0.03, -0.12 - 0.02, H]))
    _settle(env)
    assert task.is_success(env)
    env.set_object_pose("red", np.array([0.2 + sc.MAT_HALF_M + 0.01, -0.12, H]))
    _settle(env)
    assert not task.is_success(env)  # just past the edge


def test_stack_predicate(placed: TabletopEnv) -> None:
    env = placed
    task = make_task("stack", "red", "blue", env.scene)
    _settle(env)
    assert not task.is_success(env)
    env.set_object_pose("red", np.array([0.18 + 0.004, 0.02, 3 * H + 0.001]))
    _settle(env, 5)
    assert task.is_success(env)
    reverse = make_task("stack", "blue", "red", env.scene)
    assert not reverse.is_success(env)  # blue is under red, not on it
    env.set_object_pose("red", np.array([0.18 + 2.2 * H, 0.02, H]))
    _settle(env)
    assert not task.is_success(env)  # side by side


def test_task_texts_and_errors(env: TabletopEnv) -> None:
    env.reset(3, task_family="stack")
    task = env.task
    assert task is not None
    assert task.family == "stack"
    assert task.obj in task.prompt
    assert task.target in task.prompt
    assert len(task.paraphrases) >= 3
    assert all(task.obj in p for p in task.paraphrases)
    assert task.solution.startswith("1. ")
    assert "2. " in task.solution
    with pytest.raises(ValueError, match="'purple'"):
        make_task("pick_place", "purple", "bowl", env.scene)
    with pytest.raises(ValueError, match="'fly'"):
        make_task("fly", task.obj, "bowl", env.scene)
