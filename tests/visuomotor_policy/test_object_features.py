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
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy
from visuomotor_policy.object_features import OBJECT_DIM, ObjectPositionStep, named_objects
from visuomotor_policy.prompt_features import prompt_dim, prompt_vector


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
    cfg = replace(
        tp.PRESETS["debug"],
        expert_root=expert_root,
        output_dir=tmp_path / "op",
        use_state=False,
        backbone_weights=backbone_dir,
        object_positions=True,
    )
    tp.train(cfg)
    policy = LeRobotChunkPolicy.from_pretrained(tmp_path / "op" / "pretrained_model")
    loaded = [s for s in policy.preprocessor.steps if isinstance(s, ObjectPositionStep)]
    assert len(loaded) == 1
    fresh = ObjectPositionStep.from_backbone(backbone_dir)
    image = torch.rand(1, 3, 64, 64)
    # float16 weights in the checkpoint: the estimates agree to about 1 %
    np.testing.assert_allclose(
        loaded[0].estimate(image), fresh.estimate(image), rtol=2e-2, atol=1e-3
    )
    env = make_env(EnvConfig())
    try:
        obs = env.reset(3)
    finally:
        env.close()
    policy.reset()
    chunk = policy.next_chunk(Observation(obs["image"], 0.0), "put the red cube in the bowl")
    assert chunk.joint_positions_rad.shape == (policy.n_action_steps, 6)


def test_object_centric_policy_reads_no_image_and_runs_from_a_camera_frame(
    backbone_dir: Path, tmp_path: Path, expert_root: Path
) -> None:
    """--use_image false: ACT reads the prompt vector and the estimated positions only (the
    gripper's too); the goal runner's adapter still feeds the camera frame, which only the
    checkpoint's object-position step reads."""
    cfg = replace(
        tp.PRESETS["debug"],
        expert_root=expert_root,
        output_dir=tmp_path / "oc",
        use_state=False,
        backbone_weights=backbone_dir,
        object_positions=True,
        use_image=False,
        action_space="grasp",
    )
    tp.train(cfg)
    policy = LeRobotChunkPolicy.from_pretrained(tmp_path / "oc" / "pretrained_model")
    inputs = policy.policy.config.input_features
    assert list(inputs) == ["observation.environment_state"]
    assert inputs["observation.environment_state"].shape == (prompt_dim() + OBJECT_DIM + 4,)
    assert policy.image_size_px == 64
    assert not policy.reads_state
    env = make_env(EnvConfig())
    try:
        obs = env.reset(3)
    finally:
        env.close()
    observation = Observation(obs["image"], 0.0, obs["state"], policy.io.joint_names)
    policy.reset()
    chunk = policy.next_chunk(observation, "push the red cube onto the cyan mat")
    assert chunk.joint_positions_rad.shape == (policy.n_action_steps, 6)


def test_object_positions_need_a_backbone() -> None:
    with pytest.raises(ValueError, match="object_positions needs backbone_weights"):
        replace(tp.PRESETS["debug"], object_positions=True)
    with pytest.raises(ValueError, match="use_image false needs object_positions"):
        replace(tp.PRESETS["debug"], use_image=False)
