from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from executor_core.config_cli import ConfigError, parse_config
from inverse_dynamics import train_idm
from inverse_dynamics.configuration_idm import IDMConfig
from inverse_dynamics.modeling_idm import InverseDynamicsModel
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from inverse_dynamics.train_idm import PRESETS, TrainIDMConfig, augment, main


def test_debug_preset_trains_two_steps_then_resumes(
    synthetic_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = [
        "--preset",
        "debug",
        f"--dataset_root={synthetic_dataset}",
        f"--output_dir={out}",
        "--cpu=true",
    ]
    main(args)
    step2 = out / "checkpoints" / "step_000002"
    assert (step2 / "model" / "model.safetensors").is_file()
    assert json.loads((step2 / "training_state.json").read_text())["step"] == 2
    saved = json.loads((step2 / "train_config.json").read_text())
    assert saved["model"]["image_size_px"] == 32
    assert saved["dataset_root"] == str(synthetic_dataset)
    weights_at_2 = load_file(str(step2 / "model" / "model.safetensors"))

    main([*args, "--steps=4"])  # resumes at step 2, runs steps 3 and 4 only
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "loss" in r] == [1, 2, 3, 4]
    assert (
        json.loads((out / "checkpoints/step_000004/training_state.json").read_text())["step"] == 4
    )
    # The optimizer moments were restored (Adam's step counter continues at 4, not 2).
    state = json.loads((out / "checkpoints/step_000004/training_state.json").read_text())
    assert {v["step"] for v in state["scalars"].values()} == {4.0} or all(
        t.item() == 4
        for k, t in load_file(str(out / "checkpoints/step_000004/optimizer.safetensors")).items()
        if k.endswith(".step")
    )
    weights_at_4 = load_file(str(out / "model" / "model.safetensors"))
    assert not torch.equal(weights_at_2["head.0.weight"], weights_at_4["head.0.weight"])
    # Normalisation statistics come from the training episodes, not the defaults.
    assert not torch.equal(weights_at_4["action_std"], torch.ones(6))
    policy = InverseDynamicsPolicy.from_pretrained(out / "model")
    assert policy.config.image_size_px == 32


def test_a_failed_export_leaves_the_previous_model_whole(
    synthetic_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    args = ["--preset", "debug", f"--dataset_root={synthetic_dataset}", f"--output_dir={out}"]
    main([*args, "--cpu=true"])
    before = load_file(str(out / "model" / "model.safetensors"))

    def copy_fails(*_args: object) -> None:
        raise OSError("disk full (simulated) while exporting")

    monkeypatch.setattr(train_idm.shutil, "copy", copy_fails)
    with pytest.raises(OSError, match="disk full"):
        main([*args, "--cpu=true", "--steps=4"])
    after = load_file(str(out / "model" / "model.safetensors"))
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)  # not step 4's weights
    assert (out / "model" / "train_config.json").is_file()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".model.")]


def test_cli_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="nosuch"):
        parse_config(TrainIDMConfig, ["--nosuch=1"], PRESETS)
    with pytest.raises(ConfigError, match="'flowy'"):
        parse_config(TrainIDMConfig, ["--model.head=flowy"], PRESETS)
    cfg = parse_config(TrainIDMConfig, ["--preset", "sim_cpu", "--model.head=flow"], PRESETS)
    assert cfg.model.head == "flow"


@pytest.mark.parametrize("head", ["regression", "flow"])
def test_tiny_model_overfits_a_few_transitions(head: str) -> None:
    """8 fixed transitions, 400 (flow: 1500) Adam steps: the sampled chunks' error (rad)
    falls >= 10x to < 0.02 rad (flow: >= 5x to < 0.1 rad, it converges slower).
    (Measured on predictions, not on the loss: the flow-matching loss keeps an
    irreducible noise-pairing variance even when the sampler is exact.)"""
    torch.manual_seed(0)
    cfg = IDMConfig(image_size_px=16, conv_channels=(8, 16), hidden_dim=64, head=head)
    model = InverseDynamicsModel(cfg)
    frames = torch.rand(8, 2, 3, 16, 16) * 2 - 1
    state = torch.randn(8, 6) * 0.5
    actions = state[:, None] + torch.randn(8, 4, 6) * 0.2
    model.set_normalization(
        state.mean(0), state.std(0), actions.flatten(0, 1).mean(0), actions.flatten(0, 1).std(0)
    )
    present = torch.ones(8, dtype=torch.bool)

    def error_rad() -> float:
        pred = model.predict_actions(frames, state, generator=torch.Generator().manual_seed(0))
        return (pred - actions).abs().mean().item()

    before = error_rad()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(400 if head == "regression" else 1500):
        loss = model(frames, state, present, actions)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = error_rad()
    factor, bound_rad = (10, 0.02) if head == "regression" else (5, 0.1)
    assert after < before / factor, (before, after)
    assert after < bound_rad


def test_presets_are_valid_and_debug_is_tiny() -> None:
    assert {"debug", "sim_cpu", "sim_cpu_flow", "real_gpu"} <= set(PRESETS)
    debug = PRESETS["debug"]
    assert debug.steps == 2
    assert max(debug.model.conv_channels) <= 32
    with pytest.raises(ValueError, match="-1"):
        replace(debug, steps=-1)


def test_time_budget_stops_early_and_saves(synthetic_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "budget"
    main(
        [
            "--preset=debug",
            f"--dataset_root={synthetic_dataset}",
            f"--output_dir={out}",
            "--steps=50",
            "--save_every=100",
            "--time_budget_min=1e-6",  # spent after the first step
        ]
    )
    state = json.loads((out / "checkpoints/step_000001/training_state.json").read_text())
    assert state["step"] == 1
    assert state["elapsed_s"] > 0
    assert (out / "model" / "model.safetensors").is_file()
    assert not (out / "checkpoints/step_000002").exists()


def test_goal_degradation_blurs_and_noises_only_the_goal_frames() -> None:
    """Imagined-style goals: the camera frame (index 0) stays as it is, a degraded sample's
    goal frames lose edges and gain noise, the rest are untouched; off draws nothing."""
    gen = torch.Generator().manual_seed(0)
    frames = torch.zeros(6, 2, 3, 16, 16, dtype=torch.uint8)
    frames[:, :, :, :, 8:] = 255  # a vertical edge in every frame
    base = replace(PRESETS["debug"], shift_px=0, color_jitter=0.0)
    off = augment(frames, base, torch.Generator().manual_seed(1))
    assert torch.equal(off, frames.float() / 127.5 - 1.0)
    on = replace(base, goal_degrade_prob=1.0, goal_blur_px=(1.0, 1.0), goal_noise_std=0.0)
    x = augment(frames, on, gen)
    assert torch.equal(x[:, 0], off[:, 0])  # the camera frame
    edge = x[:, 1, :, :, 7:9]  # the goal's edge is now gradual
    assert (edge > -0.99).all()
    assert (edge < 0.99).all()
    assert x.min() >= -1
    assert x.max() <= 1
    noisy = replace(on, goal_blur_px=(0.0, 0.0), goal_noise_std=20.0)
    y = augment(frames, noisy, torch.Generator().manual_seed(2))
    assert torch.equal(y[:, 0], off[:, 0])
    assert (y[:, 1] - off[:, 1]).abs().max() > 0.01  # noise on the goals
    half = replace(on, goal_degrade_prob=0.5)
    z = augment(frames[:1].expand(64, -1, -1, -1, -1), half, torch.Generator().manual_seed(3))
    touched = (z[:, 1] != off[:1, 1]).flatten(1).any(1)
    assert 16 < int(touched.sum()) < 48


def test_goal_degradation_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"goal_degrade_prob must be in \[0, 1\], got 1.5"):
        replace(PRESETS["debug"], goal_degrade_prob=1.5)
    with pytest.raises(ValueError, match=r"goal_blur_px must be \(low, high\).*\(2.0, 1.0\)"):
        replace(PRESETS["debug"], goal_blur_px=(2.0, 1.0))
    with pytest.raises(ValueError, match="goal_noise_std must be in"):
        replace(PRESETS["debug"], goal_noise_std=-1.0)
    cfg = parse_config(
        TrainIDMConfig,
        ["--preset", "debug", "--goal_degrade_prob=0.5", "--goal_blur_px=0.3,1.7"],
        PRESETS,
    )
    assert cfg.goal_blur_px == (0.3, 1.7)
    assert cfg.goal_degrade_prob == 0.5
