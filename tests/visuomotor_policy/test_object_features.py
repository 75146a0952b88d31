"""The object-centric input: the prompt's objects, their estimated positions appended to
the prompt vector, saved and loaded with the checkpoint's preprocessor."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from lerobot.processor import TransitionKey

from executor_core.types import Observation
from executor_sim.env import EnvConfig, make_env
from visuomotor_policy import pretrain_backbone as pb
from visuomotor_policy import train_policy as tp
from visuomotor_policy.configuration_policy import PolicyIOConfig
from visuomotor_policy.grasp_space import GraspSpace
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy
from visuomotor_policy.object_features import OBJECT_DIM, ObjectPositionStep, named_objects
from visuomotor_policy.prompt_features import prompt_dim, prompt_vector


def _train_object_centric(backbone_dir: Path, expert_root: Path, out: Path, **overrides) -> Path:
    """The debug preset with the estimated positions as the policy's input (no image, no
    joint state unless ``overrides`` say so); the trained checkpoint folder."""
    settings = {"use_state": False, "object_positions": True, "use_image": False} | overrides
    cfg = replace(
        tp.PRESETS["debug"],
        expert_root=expert_root,
        output_dir=out,
        backbone_weights=backbone_dir,
        **settings,
    )
    tp.train(cfg)
    return out / "pretrained_model"


def _scene(seed: int) -> dict:
    """The simulator's first observation of scene ``seed``."""
    env = make_env(EnvConfig())
    try:
        return env.reset(seed)
    finally:
        env.close()


def test_named_objects_follow_the_prompt_parser() -> None:
    assert named_objects("put the red cube in the bowl") == ("red", "bowl")
    assert named_objects("push the green cube onto the cyan mat") == ("green", "mat")
    assert named_objects("stack the blue cube on the yellow cube") == ("blue", "yellow")
    assert named_objects("wave hello") == ("", "")


def test_step_appends_the_named_objects_estimates(backbone_dir: Path) -> None:
    step = ObjectPositionStep.from_backbone(backbone_dir)
    images = torch.rand(2, 3, 64, 64)
    prompts = ["put the red cube in the bowl", "stack the blue cube on the yellow cube"]
    labels = step.estimate(images)
    col = {n: i for i, n in enumerate(pb.label_names())}
    transition = {
        TransitionKey.OBSERVATION: {
            "observation.images.scene": images,
            "observation.environment_state": torch.from_numpy(
                np.stack([prompt_vector(p) for p in prompts])
            ),
        },
        TransitionKey.COMPLEMENTARY_DATA: {"task": prompts},
    }
    out = step(transition)[TransitionKey.OBSERVATION]["observation.environment_state"]
    assert out.shape == (2, prompt_dim() + OBJECT_DIM)
    want = [
        [labels[0, col[f"red_{a}_m"]] for a in "xyz"]
        + [labels[0, col["bowl_x_m"]], labels[0, col["bowl_y_m"]], 0.0],
        [labels[1, col[f"blue_{a}_m"]] for a in "xyz"]
        + [labels[1, col[f"yellow_{a}_m"]] for a in "xyz"],
    ]
    np.testing.assert_allclose(out[:, prompt_dim() :].numpy(), np.array(want), atol=1e-6)


def test_step_without_the_prompt_vector_names_what_is_missing(backbone_dir: Path) -> None:
    step = ObjectPositionStep.from_backbone(backbone_dir)
    transition = {
        TransitionKey.OBSERVATION: {"observation.images.scene": torch.rand(1, 3, 64, 64)},
        TransitionKey.COMPLEMENTARY_DATA: {"task": ["push the red cube"]},
    }
    with pytest.raises(ValueError, match=r"observation\.environment_state"):
        step(transition)


def test_policy_with_object_positions_saves_and_runs_them(
    backbone_dir: Path, tmp_path: Path, expert_root: Path
) -> None:
    folder = _train_object_centric(backbone_dir, expert_root, tmp_path / "op", use_image=True)
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    loaded = [s for s in policy.preprocessor.steps if isinstance(s, ObjectPositionStep)]
    assert len(loaded) == 1
    fresh = ObjectPositionStep.from_backbone(backbone_dir)
    image = torch.rand(1, 3, 64, 64)
    # float16 weights in the checkpoint: the estimates agree to about 1 %
    np.testing.assert_allclose(
        loaded[0].estimate(image), fresh.estimate(image), rtol=2e-2, atol=1e-3
    )
    obs = _scene(3)
    policy.reset()
    chunk = policy.next_chunk(Observation(obs["image"], 0.0), "put the red cube in the bowl")
    assert chunk.joint_positions_rad.shape == (policy.n_action_steps, 6)


def test_object_centric_policy_reads_no_image_and_runs_from_a_camera_frame(
    backbone_dir: Path, tmp_path: Path, expert_root: Path
) -> None:
    """--use_image false: ACT reads the prompt vector and the estimated positions only (the
    gripper's too); the goal runner's adapter still feeds the camera frame, which only the
    checkpoint's object-position step reads."""
    folder = _train_object_centric(backbone_dir, expert_root, tmp_path / "oc", action_space="grasp")
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    inputs = policy.policy.config.input_features
    assert list(inputs) == ["observation.environment_state"]
    assert inputs["observation.environment_state"].shape == (prompt_dim() + OBJECT_DIM + 4,)
    assert policy.image_size_px == 64
    assert not policy.reads_state
    obs = _scene(3)
    observation = Observation(obs["image"], 0.0, obs["state"], policy.io.joint_names)
    policy.reset()
    chunk = policy.next_chunk(observation, "push the red cube onto the cyan mat")
    assert chunk.joint_positions_rad.shape == (policy.n_action_steps, 6)


def test_object_positions_need_a_backbone() -> None:
    with pytest.raises(ValueError, match="object_positions needs backbone_weights"):
        replace(tp.PRESETS["debug"], object_positions=True)
    with pytest.raises(ValueError, match="use_image false needs object_positions"):
        replace(tp.PRESETS["debug"], use_image=False)


def test_gripper_frame_gives_offsets_from_the_gripper(backbone_dir: Path) -> None:
    world = ObjectPositionStep.from_backbone(backbone_dir, with_gripper=True)
    hand = ObjectPositionStep.from_backbone(backbone_dir, with_gripper=True, frame="gripper")
    assert hand.dim == OBJECT_DIM + 2
    labels = world.estimate(torch.rand(2, 3, 64, 64))
    prompts = ["put the red cube in the bowl", "wave hello"]
    w, h = world.positions(labels, prompts), hand.positions(labels, prompts)
    gripper = w[0, OBJECT_DIM : OBJECT_DIM + 3]
    np.testing.assert_allclose(h[0, :3], w[0, :3] - gripper, atol=1e-6)
    np.testing.assert_allclose(h[0, 3:6], w[0, 3:6] - gripper, atol=1e-6)
    np.testing.assert_allclose(h[:, 6:], w[:, OBJECT_DIM + 2 :], atol=1e-6)  # height, jaw
    assert not h[1, :6].any()  # a prompt that names nothing: no offsets
    with pytest.raises(ValueError, match="frame 'gripper' needs with_gripper"):
        ObjectPositionStep(label_names=pb.label_names(), frame="gripper")
    with pytest.raises(ValueError, match="got 'table'"):
        ObjectPositionStep(label_names=pb.label_names(), with_gripper=True, frame="table")


def test_hand_centric_policy_predicts_offsets_from_its_own_grasp_point(
    backbone_dir: Path, tmp_path: Path, expert_root: Path
) -> None:
    """--object_frame gripper --action_space grasp_relative: ACT reads the objects in the
    hand's frame, and the adapter adds the measured grasp point to the chunk's offsets
    before solving the joints."""
    folder = _train_object_centric(
        backbone_dir,
        expert_root,
        tmp_path / "hc",
        object_frame="gripper",
        action_space="grasp_relative",
    )
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    inputs = policy.policy.config.input_features
    assert inputs["observation.environment_state"].shape == (prompt_dim() + OBJECT_DIM + 2,)
    assert policy.relative_actions
    obs = _scene(5)
    observation = Observation(obs["image"], 0.0, obs["state"], policy.io.joint_names)
    prompt = "put the red cube in the bowl"
    policy.reset()
    chunk = policy.next_chunk(observation, prompt).joint_positions_rad
    space, policy.grasp_space, policy.relative_actions = policy.grasp_space, None, False
    policy.reset()
    raw = policy.next_chunk(observation, prompt).joint_positions_rad  # the offsets
    start = np.asarray(obs["state"], np.float64)
    np.testing.assert_allclose(
        space.to_grasp(chunk)[:, :3], raw[:, :3] + space.point(start[:5]), atol=1e-3
    )
    with pytest.raises(ValueError, match="no temporal ensembling"):
        LeRobotChunkPolicy.from_pretrained(
            folder, PolicyIOConfig(temporal_ensemble_coeff=0.01, n_action_steps=1)
        )


def test_gripper_frame_needs_the_object_centric_policy() -> None:
    with pytest.raises(ValueError, match=r"object_frame gripper .* needs use_image"):
        replace(tp.PRESETS["debug"], object_frame="gripper")


def test_grasp_point_frame_measures_from_the_measured_joints(backbone_dir: Path) -> None:
    """frame "grasp_point": the offsets are from the forward-kinematics grasp point of the
    joints, then that point's height and the measured jaw; no joints is an error."""
    world = ObjectPositionStep.from_backbone(backbone_dir)
    step = ObjectPositionStep.from_backbone(backbone_dir, frame="grasp_point")
    assert step.needs_state
    assert step.dim == OBJECT_DIM + 2
    labels = world.estimate(torch.rand(1, 3, 64, 64))
    prompt = ["stack the blue cube on the yellow cube"]
    joints = torch.tensor([[0.1, -0.3, 0.5, 0.9, 0.0, 0.4]])
    point = GraspSpace().point(joints[0, :5].double().numpy())
    out = step.positions(labels, prompt, joints)[0].numpy()
    objects = world.positions(labels, prompt)[0].numpy()
    np.testing.assert_allclose(out[:3], objects[:3] - point, atol=1e-5)
    np.testing.assert_allclose(out[3:6], objects[3:6] - point, atol=1e-5)
    np.testing.assert_allclose(out[6:], [point[2], 0.4], atol=1e-6)
    with pytest.raises(ValueError, match=r"needs the measured joints 'observation\.state'"):
        step.positions(labels, prompt)


def test_grasp_point_policy_feeds_the_joints_to_its_step_only(
    backbone_dir: Path, tmp_path: Path, expert_root: Path
) -> None:
    folder = _train_object_centric(
        backbone_dir,
        expert_root,
        tmp_path / "hp",
        object_frame="grasp_point",
        action_space="grasp_relative",
    )
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    assert list(policy.policy.config.input_features) == ["observation.environment_state"]
    assert not policy.reads_state
    assert policy.feeds_state
    obs = _scene(4)
    policy.reset()
    observation = Observation(obs["image"], 0.0, obs["state"], policy.io.joint_names)
    chunk = policy.next_chunk(observation, "push the green cube onto the cyan mat")
    assert chunk.joint_positions_rad.shape == (policy.n_action_steps, 6)
    policy.reset()
    with pytest.raises(ValueError, match="the observation has none"):
        policy.next_chunk(Observation(obs["image"], 0.0), "push the green cube onto the cyan mat")
