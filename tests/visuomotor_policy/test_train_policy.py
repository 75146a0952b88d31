"""ACT training on an expert dataset (+ a mixture): 2 steps, then a resume; the saved
checkpoint carries the prompt feature and loads as a LeRobot policy."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from executor_core.types import Observation
from visuomotor_policy import train_policy as tp
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy
from visuomotor_policy.prompt_features import prompt_dim, prompt_vector


def test_prompt_vector_parses_family_cube_and_target() -> None:
    pick = prompt_vector("put the red cube in the bowl")
    stack = prompt_vector("stack the blue cube on the red cube")
    assert pick.shape == (prompt_dim(),)
    assert pick[0] == 1
    assert pick[3] == 1
    assert pick[7] == 1
    assert stack[2] == 1
    assert stack[5] == 1
    assert stack[9] == 1
    assert not np.array_equal(stack, prompt_vector("stack the red cube on the blue cube"))
    assert not prompt_vector("do a dance").any()


def test_mixture_sampler_draws_the_configured_share() -> None:
    sampler = tp.mixture_sampler([100, 10], [0.7, 0.3], 4000, seed=0)
    from_second = np.mean([i >= 100 for i in sampler])
    assert abs(from_second - 0.3) < 0.04


def test_mixture_sampler_skips_what_the_masks_drop() -> None:
    keep = np.arange(100) % 4 != 0
    sampler = tp.mixture_sampler([100, 10], [0.5, 0.5], 2000, 0, [keep, np.ones(10, bool)])
    drawn = np.array(list(sampler))
    assert not np.isin(drawn, np.flatnonzero(~keep)).any()
    assert abs(np.mean(drawn >= 100) - 0.5) < 0.05
    with pytest.raises(ValueError, match="10 samples"):
        tp.mixture_sampler([100, 10], [0.5, 0.5], 10, 0, [keep, np.zeros(10, bool)])


def test_expert_frames_until_done_drop_the_finished_experts_hold(
    expert_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ds"
    shutil.copytree(expert_root, root)
    records = tp.read_episode_records(root)
    records[0]["expert_done_frame"] = 5  # the expert finished at frame 5 of 8
    for r in records[1:]:
        r["expert_done_frame"] = None  # never finished: every frame stays
    (root / "meta" / "executor_episodes.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records)
    )
    cfg = replace(tp.PRESETS["debug"], expert_root=root)
    dataset = tp.open_dataset(root, [0, 1, 2], cfg.chunk_size)
    mask = tp.expert_frame_mask(dataset, cfg)
    episodes = np.asarray(dataset.hf_dataset["episode_index"])
    frames = np.asarray(dataset.hf_dataset["frame_index"])
    assert not mask[(episodes == 0) & (frames >= 5)].any()
    assert mask[(episodes == 0) & (frames < 5)].all()
    assert mask[episodes != 0].all()
    assert tp.expert_frame_mask(dataset, replace(cfg, expert_frames="all")).all()


def test_debug_preset_trains_two_steps_then_resumes(expert_root: Path, tmp_path: Path) -> None:
    from lerobot.configs import PreTrainedConfig
    from lerobot.policies.factory import make_pre_post_processors

    cfg = replace(tp.PRESETS["debug"], expert_root=expert_root, output_dir=tmp_path / "run")
    first = tp.train(cfg)
    assert first["steps"] == 2
    step2 = tmp_path / "run" / "checkpoints" / "step_000002"
    assert (step2 / "pretrained_model" / "model.safetensors").is_file()
    resumed = tp.train(replace(cfg, steps=3))
    state = json.loads(
        (tmp_path / "run" / "checkpoints" / "step_000003" / "training_state.json").read_text()
    )
    assert resumed["steps"] == state["step"] == 3
    assert len(resumed["last_losses"]) == 1  # only the one missing step ran
    folder = tmp_path / "run" / "pretrained_model"
    config = PreTrainedConfig.from_pretrained(folder, local_files_only=True)
    assert config.type == "act"
    assert config.pretrained_backbone_weights is None
    pre, _ = make_pre_post_processors(config, pretrained_path=str(folder))
    batch = {
        "observation.images.scene": torch.rand(1, 3, 64, 64),
        "observation.state": torch.zeros(1, 6),
        "task": ["put the red cube in the bowl"],
    }
    out = pre(batch)
    assert torch.equal(
        out["observation.environment_state"][0],
        torch.from_numpy(prompt_vector("put the red cube in the bowl")),
    )
    # the goal runner's adapter loads it: the prompt vector is the preprocessor's own input
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    joints = policy.io.joint_names
    obs = Observation(np.zeros((64, 64, 3), np.uint8), 0.0, np.zeros(len(joints)), joints)
    policy.reset()
    chunk = policy.next_chunk(obs, "put the red cube in the bowl")
    assert chunk.joint_positions_rad.shape == (policy.n_action_steps, len(joints))
    assert np.isfinite(chunk.joint_positions_rad).all()


def test_mixture_adds_the_neural_episodes(expert_root: Path, tmp_path: Path) -> None:
    cfg = replace(
        tp.PRESETS["debug"],
        expert_root=expert_root,
        neural_root=expert_root,  # any dataset of ours stands in for the second source
        output_dir=tmp_path / "mix",
        steps=1,
    )
    summary = tp.train(cfg)
    assert summary["neural_episodes"] == 3
    assert summary["neural_ratio"] == 0.5


def test_use_state_false_trains_a_policy_that_reads_no_state(
    expert_root: Path, tmp_path: Path
) -> None:
    """--use_state false: the checkpoint's inputs are the image and the prompt only, and the
    goal runner's adapter runs it from a frame without joints."""
    cfg = replace(
        tp.PRESETS["debug"], expert_root=expert_root, output_dir=tmp_path / "ns", use_state=False
    )
    tp.train(cfg)
    folder = tmp_path / "ns" / "pretrained_model"
    inputs = json.loads((folder / "config.json").read_text())["input_features"]
    assert set(inputs) == {"observation.images.scene", "observation.environment_state"}
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    assert not policy.reads_state
    policy.reset()
    chunk = policy.next_chunk(Observation(np.zeros((64, 64, 3), np.uint8), 0.0), "push")
    assert chunk.joint_positions_rad.shape == (policy.n_action_steps, 6)


def test_every_training_image_is_shifted(
    expert_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """image_shift_px (the debug preset's 2): each batch's camera images go through
    random_shift before the policy sees them; the state and actions do not."""
    seen: list[tuple[tuple[int, ...], int]] = []
    real = tp.random_shift

    def spy(images: torch.Tensor, pad_px: int, generator: torch.Generator) -> torch.Tensor:
        seen.append((tuple(images.shape), pad_px))
        return real(images, pad_px, generator)

    monkeypatch.setattr(tp, "random_shift", spy)  # a recording wrapper around the real one
    cfg = replace(tp.PRESETS["debug"], expert_root=expert_root, output_dir=tmp_path / "aug")
    tp.train(cfg)
    assert seen == [((cfg.batch_size, 3, 64, 64), 2)] * cfg.steps


def test_policy_image_px_trains_and_runs_at_that_size(
    expert_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--policy_image_px 96 on a 64 px dataset: every training batch is enlarged to 96 px
    before the policy sees it, the checkpoint declares 96 px, and the goal runner's adapter
    enlarges a 64 px camera frame to it."""
    resized: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    real = tp.resize_square

    def spy(images: torch.Tensor, size_px: int) -> torch.Tensor:
        out = real(images, size_px)
        resized.append((tuple(images.shape), tuple(out.shape)))
        return out

    monkeypatch.setattr(tp, "resize_square", spy)  # a recording wrapper around the real one
    cfg = replace(
        tp.PRESETS["debug"], expert_root=expert_root, output_dir=tmp_path / "px", policy_image_px=96
    )
    summary = tp.train(cfg)
    assert summary["config"]["policy_image_px"] == 96
    b = cfg.batch_size
    assert resized == [((b, 3, 64, 64), (b, 3, 96, 96))] * cfg.steps
    folder = tmp_path / "px" / "pretrained_model"
    inputs = json.loads((folder / "config.json").read_text())["input_features"]
    assert inputs["observation.images.scene"]["shape"] == [3, 96, 96]
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    assert policy.image_size_px == 96
    obs = Observation(np.zeros((64, 64, 3), np.uint8), 0.0, np.zeros(6), policy.io.joint_names)
    assert policy.features(obs)["observation.images.scene"].shape == (96, 96, 3)
    policy.reset()
    chunk = policy.next_chunk(obs, "push the red cube onto the mat")
    assert chunk.joint_positions_rad.shape == (policy.n_action_steps, 6)


def test_diffusion_policy_trains_resumes_and_runs_chunks(expert_root: Path, tmp_path: Path) -> None:
    """--policy_type diffusion: LeRobot's diffusion policy on the same data (observations
    given an observation-step axis), resumed, then run by the goal runner's adapter."""
    cfg = replace(
        tp.PRESETS["debug"],
        expert_root=expert_root,
        output_dir=tmp_path / "dp",
        policy_type="diffusion",
        diffusion_down_dims=(16, 32),
        diffusion_inference_steps=2,
    )
    first = tp.train(cfg)
    assert first["steps"] == 2
    assert np.isfinite(first["last_losses"]).all()
    assert tp.train(replace(cfg, steps=3))["steps"] == 3
    folder = tmp_path / "dp" / "pretrained_model"
    config = json.loads((folder / "config.json").read_text())
    assert config["type"] == "diffusion"
    assert (config["horizon"], config["n_obs_steps"], config["crop_shape"]) == (4, 1, [56, 56])
    assert config["down_dims"] == [16, 32]
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    obs = Observation(np.zeros((64, 64, 3), np.uint8), 0.0, np.zeros(6), policy.io.joint_names)
    policy.reset()
    chunk = policy.next_chunk(obs, "put the red cube in the bowl")
    assert chunk.joint_positions_rad.shape == (cfg.n_action_steps, 6)
    assert np.isfinite(chunk.joint_positions_rad).all()


@pytest.mark.parametrize("freeze", [True, False])
def test_pretrained_backbone_starts_act_and_its_image_stats_normalise(
    expert_root: Path, tmp_path: Path, backbone_dir: Path, freeze: bool
) -> None:
    """--backbone_weights: ACT's ResNet-18 starts from the pretrained weights, stays there
    when frozen (and moves when not), and the checkpoint's preprocessor normalises images
    with the statistics the backbone was trained with."""
    from lerobot.policies.act.modeling_act import ACTPolicy
    from safetensors.torch import load_file

    from visuomotor_policy.pretrain_backbone import read_backbone

    weights, config = read_backbone(backbone_dir)
    cfg = replace(
        tp.PRESETS["debug"],
        expert_root=expert_root,
        output_dir=tmp_path / "bb",
        backbone_weights=backbone_dir,
        freeze_backbone=freeze,
    )
    tp.train(cfg)
    folder = tmp_path / "bb" / "pretrained_model"
    trained = ACTPolicy.from_pretrained(folder).model.backbone.state_dict()
    moved = [k for k in weights if not torch.equal(trained[k], weights[k])]
    if freeze:
        assert moved == []
    else:
        assert "conv1.weight" in moved
    stats = {
        k: v
        for f in folder.glob("policy_preprocessor*.safetensors")
        for k, v in load_file(str(f)).items()
        if k.startswith("observation.images.scene")
    }
    np.testing.assert_allclose(
        stats["observation.images.scene.mean"].flatten(), config["image_mean"], rtol=1e-6
    )
    np.testing.assert_allclose(
        stats["observation.images.scene.std"].flatten(), config["image_std"], rtol=1e-6
    )


def test_backbone_at_another_size_or_for_diffusion_is_refused(
    expert_root: Path, tmp_path: Path, backbone_dir: Path
) -> None:
    with pytest.raises(ValueError, match=r"backbone_weights .* policy_type 'diffusion'"):
        replace(
            tp.PRESETS["debug"],
            backbone_weights=backbone_dir,
            policy_type="diffusion",
            diffusion_down_dims=(16, 32),
        )
    cfg = replace(
        tp.PRESETS["debug"],
        expert_root=expert_root,
        output_dir=tmp_path / "px",
        backbone_weights=backbone_dir,
        policy_image_px=96,
    )
    with pytest.raises(ValueError, match="pretrained on 64 px images, the policy sees 96 px"):
        tp.train(cfg)


def test_add_observation_steps_adds_the_axis_to_observations_only() -> None:
    batch = {
        "observation.images.scene": torch.zeros(2, 3, 8, 8),
        "observation.state": torch.zeros(2, 6),
        "action": torch.zeros(2, 4, 6),
        "task": ["a", "b"],
    }
    out = tp.add_observation_steps(batch)
    assert out["observation.images.scene"].shape == (2, 1, 3, 8, 8)
    assert out["observation.state"].shape == (2, 1, 6)
    assert out["action"].shape == (2, 4, 6)
    assert out["task"] == ["a", "b"]


def test_bad_config_names_the_value() -> None:
    with pytest.raises(ValueError, match="image_shift_px must be >= 0, got -1"):
        replace(tp.PRESETS["debug"], image_shift_px=-1)
    with pytest.raises(ValueError, match="policy_image_px must be >= 0, got -64"):
        replace(tp.PRESETS["debug"], policy_image_px=-64)
    with pytest.raises(ValueError, match="policy_type must be act/diffusion, got 'vqbet'"):
        replace(tp.PRESETS["debug"], policy_type="vqbet")
    with pytest.raises(ValueError, match="diffusion reads the joint state"):
        replace(tp.PRESETS["debug"], policy_type="diffusion", use_state=False)
    with pytest.raises(ValueError, match="chunk_size 20 must be a multiple of 8"):
        replace(tp.PRESETS["sim"], policy_type="diffusion")
    with pytest.raises(ValueError, match=r"diffusion_down_dims must be positive widths, got \(\)"):
        replace(tp.PRESETS["debug"], policy_type="diffusion", diffusion_down_dims=())
    with pytest.raises(ValueError, match="neural_ratio"):
        replace(tp.PRESETS["debug"], neural_ratio=1.0)
    with pytest.raises(ValueError, match="'some'"):
        replace(tp.PRESETS["debug"], expert_frames="some")
    with pytest.raises(ValueError, match="n_action_steps"):
        replace(tp.PRESETS["debug"], n_action_steps=9, chunk_size=4)
    with pytest.raises(ValueError, match="device must be cpu, cuda or cuda:N, got 'gpu'"):
        replace(tp.PRESETS["debug"], device="gpu")
    for name in ("learning_rate", "weight_decay", "grad_clip_norm", "dropout"):
        for bad in (float("nan"), float("inf")):
            with pytest.raises(ValueError, match=f"{name}.*{bad}"):
                replace(tp.PRESETS["debug"], **{name: bad})


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_named(expert_root: Path, tmp_path: Path) -> None:
    cfg = replace(
        tp.PRESETS["debug"], expert_root=expert_root, output_dir=tmp_path / "c", device="cuda"
    )
    with pytest.raises(ValueError, match="device 'cuda': this machine has no CUDA device"):
        tp.train(cfg)
    assert not (tmp_path / "c" / "checkpoints").exists()


@pytest.mark.gpu
def test_debug_preset_trains_on_cuda_then_resumes_and_loads_on_cpu(
    expert_root: Path, tmp_path: Path
) -> None:
    cfg = replace(
        tp.PRESETS["debug"], expert_root=expert_root, output_dir=tmp_path / "g", device="cuda"
    )
    assert tp.train(cfg)["steps"] == 2
    assert tp.train(replace(cfg, steps=3))["steps"] == 3
    policy = LeRobotChunkPolicy.from_pretrained(tmp_path / "g" / "pretrained_model")
    assert next(policy.policy.parameters()).device.type == "cpu"
    joints = policy.io.joint_names
    obs = Observation(np.zeros((64, 64, 3), np.uint8), 0.0, np.zeros(len(joints)), joints)
    policy.reset()
    chunk = policy.next_chunk(obs, "put the red cube in the bowl")
    assert np.isfinite(chunk.joint_positions_rad).all()


def test_resume_reproduces_an_uninterrupted_run(expert_root: Path, tmp_path: Path) -> None:
    """2 steps + a resume to 3 end at the weights of 3 steps in one go: the batches, the
    image shifts and the dropout are functions of (seed, step), not of where a run began."""
    from safetensors.torch import load_file

    cfg = replace(tp.PRESETS["debug"], expert_root=expert_root, steps=3)
    tp.train(replace(cfg, output_dir=tmp_path / "whole"))
    tp.train(replace(cfg, output_dir=tmp_path / "split", steps=2))
    tp.train(replace(cfg, output_dir=tmp_path / "split"))
    whole = load_file(str(tmp_path / "whole" / "pretrained_model" / "model.safetensors"))
    split = load_file(str(tmp_path / "split" / "pretrained_model" / "model.safetensors"))
    assert whole.keys() == split.keys()
    for key, value in whole.items():
        torch.testing.assert_close(split[key], value, rtol=0, atol=0, msg=key)
