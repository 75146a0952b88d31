"""The programmatic judge on frames rendered by the simulator: solved vs not solved."""

from __future__ import annotations

import os

import numpy as np
import pytest

from self_distillation.judges import JudgeVerdict, ProgrammaticJudge, VideoJudge

os.environ.setdefault("MUJOCO_GL", "egl")
SEEDS = (0, 1, 5, 24)  # seed 1 puts the red cube right behind the blue one (stack trap)


@pytest.fixture(scope="module")
def env():
    from executor_sim.env import EnvConfig, make_env

    env = make_env(EnvConfig(image_size_px=64))
    yield env
    env.close()


def _record(env) -> dict:
    return {"episode_index": 0, **env.task.to_json(), "scene": env.scene.to_json()}


def _solve(env) -> None:
    from executor_sim import scene as sc

    task = env.task
    if task.family == "pick_place":
        p = env.object_position("bowl")
        env.set_object_pose(task.obj, np.array([p[0], p[1], 0.02]))
    elif task.family == "push":
        p = env.object_position("mat")
        env.set_object_pose(task.obj, np.array([p[0], p[1], sc.CUBE_HALF_M + 0.002]))
    else:
        p = env.object_position(task.target)
        env.set_object_pose(task.obj, np.array([p[0], p[1], 3 * sc.CUBE_HALF_M]))


@pytest.mark.parametrize("family", ["pick_place", "push", "stack"])
@pytest.mark.parametrize("seed", SEEDS)
def test_solved_and_unsolved_rendered_videos(env, family: str, seed: int):
    judge = ProgrammaticJudge()
    env.reset(seed, family)
    record = _record(env)
    first = env.render(64)
    unsolved = judge.judge(np.stack([first] * 4), record)
    assert not unsolved.success, unsolved.reason
    assert unsolved.score < 1.0
    _solve(env)
    last = env.render(64)
    solved = judge.judge(np.stack([first, first, last, last]), record)
    assert solved.success, solved.reason
    assert solved.score == 1.0
    # Solved only in the very last frame (still moving): not accepted.
    assert not judge.judge(np.stack([first, first, first, last]), record).success


def test_wrong_cube_in_the_bowl_is_not_success(env):
    judge = ProgrammaticJudge()
    env.reset(3, "pick_place")
    record = _record(env)
    first = env.render(64)
    other = next(c for c in env.scene.cubes if c != env.task.obj)
    p = env.object_position("bowl")
    env.set_object_pose(other, np.array([p[0], p[1], 0.02]))
    verdict = judge.judge(np.stack([first, first, env.render(64), env.render(64)]), record)
    assert not verdict.success


def test_task_is_parsed_from_the_prompt_when_fields_are_missing():
    judge = ProgrammaticJudge()
    assert judge.task_of({"prompt": "stack the red cube on the blue cube"}) == (
        "stack",
        "red",
        "blue",
    )
    assert judge.task_of({"prompt": "put the green cube in the bowl"}) == (
        "pick_place",
        "green",
        "bowl",
    )
    assert judge.task_of({"prompt": "push the yellow cube onto the cyan mat"}) == (
        "push",
        "yellow",
        "mat",
    )
    with pytest.raises(ValueError, match="'dance'"):
        judge.task_of({"prompt": "dance"})


def test_bad_frames_are_refused():
    judge = ProgrammaticJudge()
    record = {"prompt": "put the red cube in the bowl"}
    with pytest.raises(ValueError, match="uint8"):
        judge.judge(np.zeros((4, 8, 8, 3), np.float32), record)
    with pytest.raises(ValueError, match="at least 3 frames"):
        judge.judge(np.zeros((2, 8, 8, 3), np.uint8), record)


def test_protocol_and_verdict_validation():
    assert isinstance(ProgrammaticJudge(), VideoJudge)
    with pytest.raises(ValueError, match=r"1\.5"):
        JudgeVerdict(True, 1.5, "x")
