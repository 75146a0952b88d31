"""Grasp-space actions: forward kinematics, the round trip through the solver, the error
for an unreachable target, the trainer's declaration and the adapter's solve."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from executor_core.types import Observation
from executor_sim.env import EnvConfig, make_env
from executor_sim.expert import expert_policy
from visuomotor_policy import grasp_space as gs
from visuomotor_policy import train_policy as tp
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy


@pytest.fixture(scope="module")
def space() -> gs.GraspSpace:
    return gs.GraspSpace()


@pytest.fixture(scope="module")
def expert_actions() -> np.ndarray:
    """The scripted expert's joint targets over two episodes (a grasp and a push)."""
    env = make_env(EnvConfig())
    rows = []
    try:
        for seed, family in ((3, "pick_place"), (4, "push")):
            env.reset(seed, task_family=family)
            policy = expert_policy(env)
            for _ in range(48):
                action = policy(env)
                rows.append(action)
                env.step(action)
    finally:
        env.close()
    return np.asarray(rows, np.float64)


def test_grasp_point_is_between_the_pads_when_fingers_point_down(space: gs.GraspSpace) -> None:
    env = make_env(EnvConfig())
    try:
        env.reset(0)
        q = env.joint_positions_rad()
        point = space.to_grasp(q)[:3]
        np.testing.assert_allclose(point, space.point(q[:5]), atol=1e-6)
        pitch = space.to_grasp(q)[3]
        assert pitch == pytest.approx(q[1] + q[2] + q[3], abs=1e-6)
    finally:
        env.close()


def test_expert_actions_round_trip(space: gs.GraspSpace, expert_actions: np.ndarray) -> None:
    grasp = space.to_grasp(expert_actions)
    assert grasp.shape == expert_actions.shape
    joints = space.to_joints(grasp, expert_actions[0])
    np.testing.assert_allclose(joints, expert_actions, atol=1e-4)


def test_the_same_grasp_point_from_another_seed_is_reached(
    space: gs.GraspSpace, expert_actions: np.ndarray
) -> None:
    """A seed off by 0.2 rad per joint still lands the grasp point where it was asked."""
    target = space.to_grasp(expert_actions[20:21])
    joints = space.to_joints(target, expert_actions[20] + 0.2)
    np.testing.assert_allclose(space.to_grasp(joints)[0, :3], target[0, :3], atol=1e-4)


def test_an_unreachable_target_names_itself(
    space: gs.GraspSpace, expert_actions: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    far = space.to_grasp(expert_actions[:1]).copy()
    far[0, 0] += 2.0  # two metres further than the arm reaches
    with pytest.raises(ValueError, match="out of the arm's reach"):
        space.to_joints(far, expert_actions[0])
    closest = space.to_joints(far, expert_actions[0], strict=False)  # at run time: warned
    assert np.isfinite(closest).all()
    assert "out of the arm's reach" in caplog.text


def test_action_space_declaration(tmp_path: Path) -> None:
    assert gs.read_action_space(tmp_path) == "joints"  # a checkpoint that declares none
    gs.write_action_space(tmp_path, "grasp")
    assert gs.read_action_space(tmp_path) == "grasp"
    with pytest.raises(ValueError, match="'cartesian'"):
        gs.write_action_space(tmp_path, "cartesian")
    (tmp_path / gs.ACTION_SPACE_FILE).write_text(json.dumps({"action_space": "polar"}))
    with pytest.raises(ValueError, match="'polar'"):
        gs.read_action_space(tmp_path)


def test_grasp_policy_trains_on_grasp_targets_and_the_adapter_solves_joints(
    expert_root: Path, tmp_path: Path, space: gs.GraspSpace
) -> None:
    """--action_space grasp: the action statistics are of grasp-space targets, the
    checkpoint declares the space, and the goal runner's adapter returns joint targets whose
    grasp points are the policy's own predictions."""
    from safetensors.torch import load_file

    cfg = replace(
        tp.PRESETS["debug"],
        expert_root=expert_root,
        output_dir=tmp_path / "g",
        action_space="grasp",
        use_state=False,
    )
    tp.train(cfg)
    folder = tmp_path / "g" / "pretrained_model"
    assert gs.read_action_space(folder) == "grasp"
    post = {
        k: v
        for f in folder.glob("policy_postprocessor*.safetensors")
        for k, v in load_file(str(f)).items()
    }
    actions = np.stack(tp.open_dataset(expert_root, [0, 1, 2], 1).hf_dataset["action"])
    np.testing.assert_allclose(
        post["action.mean"].numpy(), space.to_grasp(actions).mean(0), rtol=1e-4, atol=1e-5
    )
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    assert policy.grasp_space is not None
    env = make_env(EnvConfig())
    try:
        obs = env.reset(7)
    finally:
        env.close()
    observation = Observation(obs["image"], 0.0, obs["state"], policy.io.joint_names)
    policy.reset()
    chunk = policy.next_chunk(observation, "put the red cube in the bowl")
    assert chunk.joint_positions_rad.shape == (policy.n_action_steps, 6)
    policy.reset()
    policy.grasp_space = None  # the same inference, left in grasp space
    raw = policy.next_chunk(observation, "put the red cube in the bowl").joint_positions_rad
    np.testing.assert_allclose(space.to_grasp(chunk.joint_positions_rad), raw, atol=1e-3)


def test_bad_action_space_is_named() -> None:
    with pytest.raises(ValueError, match=r"action_space must be one of .* got 'polar'"):
        replace(tp.PRESETS["debug"], action_space="polar")


def test_relative_targets_are_measured_from_the_starting_grasp_point(
    space: gs.GraspSpace, expert_actions: np.ndarray
) -> None:
    chunk = space.to_grasp(expert_actions[10:30])
    start = expert_actions[9]
    relative = space.relative_to(chunk[None], start[None])[0]
    np.testing.assert_allclose(relative[:, :3], chunk[:, :3] - space.point(start[:5]), atol=1e-6)
    np.testing.assert_array_equal(relative[:, 3:], chunk[:, 3:])
    np.testing.assert_allclose(space.absolute_from(relative, start), chunk, atol=1e-6)
    own = space.relative_to(space.to_grasp(start[None])[None], start[None])[0, 0, :3]
    np.testing.assert_allclose(own, 0.0, atol=1e-6)


def test_relative_chunk_statistics_hold_the_last_target_at_the_episode_end(
    space: gs.GraspSpace, expert_root: Path
) -> None:
    """The trainer's grasp_relative statistics are over every target of each chunk, the
    chunk held at its episode's last frame as LeRobot pads it."""
    dataset = tp.open_dataset(expert_root, [0, 1], 1)
    actions = np.stack(dataset.hf_dataset["action"]).astype(np.float32)
    states = np.stack(dataset.hf_dataset[tp.STATE_KEY]).astype(np.float32)
    episodes = np.asarray(dataset.hf_dataset["episode_index"])
    mask = np.zeros(len(episodes), bool)
    last = int(np.flatnonzero(episodes == episodes[0]).max())
    mask[[0, last]] = True
    rows = tp.relative_chunk_rows(dataset, mask, space, chunk=3).reshape(2, 3, 6)
    want_first = space.relative_to(space.to_grasp(actions[0:3])[None], states[:1])[0]
    np.testing.assert_allclose(rows[0], want_first, atol=1e-5)
    held = np.repeat(actions[last : last + 1], 3, axis=0)  # past the end: the last target
    want_last = space.relative_to(space.to_grasp(held)[None], states[last : last + 1])[0]
    np.testing.assert_allclose(rows[1], want_last, atol=1e-5)


def test_relative_declaration_names_offsets(tmp_path: Path) -> None:
    gs.write_action_space(tmp_path, "grasp_relative")
    assert gs.read_action_space(tmp_path) == "grasp_relative"
    names = json.loads((tmp_path / gs.ACTION_SPACE_FILE).read_text())["names"]
    assert names[:3] == ["dx_m", "dy_m", "dz_m"]
