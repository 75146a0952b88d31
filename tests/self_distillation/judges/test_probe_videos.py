"""The probe videos the judges are measured on (executor_sim.probe_videos): the video models'
format, a function of (kind, seed, family), and each kind shows what it claims."""

from __future__ import annotations

import os

import numpy as np
import pytest

from executor_sim.env import EnvConfig, make_env
from executor_sim.probe_videos import PROBE_KINDS, ProbeConfig, goal_pose, render_probe

os.environ.setdefault("MUJOCO_GL", "egl")
SEED = 1_000_300


@pytest.fixture(scope="module")
def env():
    sim = make_env(EnvConfig(image_size_px=64))
    yield sim
    sim.close()


@pytest.mark.parametrize("kind", PROBE_KINDS)
def test_every_kind_is_a_clip_from_the_reset_scene(env, kind: str) -> None:
    probe = render_probe(env, kind, SEED, "pick_place")
    assert probe.frames.shape == (16, 64, 64, 3)
    assert probe.frames.dtype == np.uint8
    env.reset(SEED, task_family="pick_place")
    np.testing.assert_array_equal(probe.frames[0], env.render())
    record = probe.record
    assert record["seed"] == SEED
    assert record["reset_family"] == "pick_place"
    assert record["task_family"] == "pick_place"
    assert record["object"] == env.task.obj
    assert record["scene"] == env.scene.to_json()
    again = render_probe(env, kind, SEED, "pick_place")
    np.testing.assert_array_equal(again.frames, probe.frames)  # deterministic
    assert again.details == probe.details


def test_kinds_show_what_they_claim(env) -> None:
    expert = render_probe(env, "expert", SEED, "stack")
    assert expert.valid
    assert expert.predicate
    frozen = render_probe(env, "frozen", SEED, "stack")
    assert (frozen.frames == frozen.frames[0]).all()
    assert not frozen.predicate
    teleport = render_probe(env, "teleport", SEED, "stack")
    k = teleport.details["jump_frame"]
    assert (teleport.frames[:k] == teleport.frames[0]).all()
    assert (teleport.frames[k:] == teleport.frames[-1]).all()
    assert teleport.predicate
    copy = render_probe(env, "copy_at_goal", SEED, "stack")
    changed = np.any(copy.frames[-1] != copy.frames[0], axis=-1)
    assert changed.sum() == copy.details["copy_px"] > 0  # only the copy's pixels differ
    hold = render_probe(env, "hold", SEED, "stack")
    assert hold.valid
    assert not hold.predicate
    assert hold.details["hold_from_step"] is not None
    wrong = render_probe(env, "wrong_cube", SEED, "stack")
    assert wrong.valid
    assert wrong.details["moved_cube"] != wrong.record["object"]
    slide = render_probe(env, "slide", SEED, "stack")
    steps = np.abs(np.diff(slide.frames.astype(int), axis=0)).sum(axis=(1, 2, 3))
    assert (steps > 0).sum() >= 2
    assert slide.predicate


def test_a_pushed_cube_is_held_against_the_pusher(env) -> None:
    hold = render_probe(env, "hold", SEED + 1, "push")
    assert hold.valid
    assert hold.details["variant"] == "pushed"
    assert env.touching_gripper(hold.record["object"])
    assert not hold.predicate


def test_goal_pose_satisfies_the_predicate(env) -> None:
    for family in ("pick_place", "push", "stack"):
        env.reset(SEED, task_family=family)
        pos, yaw = goal_pose(env, env.task)
        env.set_object_pose(env.task.obj, pos, yaw)
        assert env.task.is_success(env), family


def test_bad_requests_are_named(env) -> None:
    with pytest.raises(ValueError, match="'juggle'"):
        render_probe(env, "juggle", SEED)
    with pytest.raises(ValueError, match="64 px, the probe wants 128 px"):
        render_probe(env, "expert", SEED, cfg=ProbeConfig(image_size_px=128))
    with pytest.raises(ValueError, match="num_frames must be >= 6, got 3"):
        ProbeConfig(num_frames=3)
