"""executor-pretrain-backbone: labels from the simulator's state, 2 steps then a resume,
a backbone that ACT's ResNet-18 loads key for key, and a loss that learns."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from executor_sim.env import EnvConfig, make_env
from executor_sim.scene import CUBE_COLORS
from visuomotor_policy import pretrain_backbone as pb
from visuomotor_policy.testing import save_tiny_random_act


def test_labels_are_the_scene_state() -> None:
    env = make_env(EnvConfig())
    try:
        env.reset(pb.PRETRAIN_SEED)
        labels = pb.scene_labels(env)
        col = {n: i for i, n in enumerate(pb.label_names())}
        assert labels.shape == (len(pb.label_names()),)
        assert env.scene is not None
        for c in CUBE_COLORS:
            present = c in env.scene.cubes
            assert labels[col[f"{c}_present"]] == float(present)
            xyz = [labels[col[f"{c}_{a}_m"]] for a in "xyz"]
            expected = env.object_position(c) if present else np.zeros(3)
            np.testing.assert_allclose(xyz, expected, atol=1e-6)
        np.testing.assert_allclose(
            [labels[col["bowl_x_m"]], labels[col["bowl_y_m"]]], env.scene.bowl_xy, atol=1e-6
        )
        joints = [labels[col[f"joint_{i}_rad"]] for i in range(6)]
        np.testing.assert_allclose(joints, env.joint_positions_rad(), atol=1e-6)
    finally:
        env.close()


def test_debug_preset_pretrains_then_resumes(backbone_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(backbone_dir, run)  # the shared fixture stays at step 2
    cfg = replace(pb.PRESETS["debug"], output_dir=run, steps=3)
    summary = pb.pretrain(cfg)  # the frames come from the cache; one step runs
    state = json.loads((run / "checkpoints" / "step_000003" / "training_state.json").read_text())
    assert summary["steps"] == state["step"] == 3
    config = json.loads((run / pb.BACKBONE_CONFIG).read_text())
    assert config["image_px"] == 64
    assert len(config["image_mean"]) == 3
    assert set(config["validation"]) >= {"cube_xyz_error_m", "joint_rms_error_rad"}
    assert np.isfinite(list(config["validation"].values())).all()


def test_backbone_loads_into_acts_resnet_key_for_key(backbone_dir: Path, tmp_path: Path) -> None:
    from lerobot.policies.act.modeling_act import ACTPolicy

    weights, _ = pb.read_backbone(backbone_dir)
    policy = ACTPolicy.from_pretrained(save_tiny_random_act(tmp_path / "act"))
    own = policy.model.backbone.state_dict()
    assert set(weights) == set(own)
    policy.model.backbone.load_state_dict(weights)  # strict: frozen batch norm included
    for key in ("conv1.weight", "bn1.running_var", "layer4.1.conv2.weight"):
        assert torch.equal(policy.model.backbone.state_dict()[key], weights[key])


def test_loss_ignores_the_positions_of_absent_cubes() -> None:
    d = len(pb.label_names())
    loss = pb.LabelLoss(torch.zeros(d), torch.ones(d))
    labels = torch.zeros(2, d)
    labels[:, 0] = 1.0  # the first colour present, the others absent
    pred = torch.zeros(2, d)
    base = loss(pred, labels)
    absent_xyz = pb.label_names().index(f"{CUBE_COLORS[1]}_x_m")
    pred[:, absent_xyz] = 5.0
    assert torch.equal(loss(pred, labels), base)
    pred[:, 1] = 5.0  # the present cube's x
    assert loss(pred, labels) > base


def test_loss_falls_when_fitting_a_few_frames() -> None:
    torch.manual_seed(0)
    frames = pb.render_frames(replace(pb.PRESETS["debug"], num_episodes=2), progress=False)
    labels = torch.from_numpy(frames["labels"])
    mean, std = pb.label_stats(frames["labels"])
    images = pb.normalise_images(
        torch.from_numpy(frames["images"]), torch.full((3,), 0.5), torch.full((3,), 0.25)
    )
    net = pb.make_network(len(pb.label_names()))
    net.eval()  # batch norm's running statistics would lag over a few steps
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = pb.LabelLoss(mean, std)
    losses = []
    for _ in range(15):
        loss = loss_fn(net(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_config_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"val_episodes.*5"):
        pb.PretrainBackboneConfig(num_episodes=5, val_episodes=5)
    with pytest.raises(ValueError, match=r"frame_stride.*0"):
        pb.PretrainBackboneConfig(frame_stride=0)
    with pytest.raises(ValueError, match=r"learning_rate.*inf"):
        pb.PretrainBackboneConfig(learning_rate=float("inf"))
    with pytest.raises(ValueError, match=r"weight_decay.*nan"):
        pb.PretrainBackboneConfig(weight_decay=float("nan"))


def test_missing_backbone_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="executor-pretrain-backbone"):
        pb.read_backbone(tmp_path)


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    """A run killed after step 2 of 3 and rerun ends at the weights of the run that never
    stopped: each step's batch is a function of (seed, step)."""
    from safetensors.torch import load_file

    whole = tmp_path / "whole"
    cfg = replace(pb.PRESETS["debug"], output_dir=whole, steps=3)
    pb.pretrain(cfg)
    killed = tmp_path / "killed"
    shutil.copytree(whole, killed)
    shutil.rmtree(killed / "checkpoints" / "step_000003")
    for name in (pb.BACKBONE_FILE, pb.HEAD_FILE, pb.BACKBONE_CONFIG):
        (killed / name).unlink()
    pb.pretrain(replace(cfg, output_dir=killed))
    expected = load_file(str(whole / pb.BACKBONE_FILE))
    got = load_file(str(killed / pb.BACKBONE_FILE))
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0, msg=key)
