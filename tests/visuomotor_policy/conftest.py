"""One tiny random ACT checkpoint per test session (saved as LeRobot's trainer saves one),
offline, one torch thread on the shared cores."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from executor_sim.generate import GenerateConfig, generate
from visuomotor_policy import pretrain_backbone as pb
from visuomotor_policy.testing import save_tiny_random_act

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def expert_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-episode, 8-frame expert dataset (the trainers' debug presets read it)."""
    root = tmp_path_factory.mktemp("expert") / "ds"
    generate(GenerateConfig(root=root, num_episodes=3, num_frames=8, workers=1), progress=False)
    return root


@pytest.fixture(scope="session")
def backbone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """executor-pretrain-backbone's debug preset: 3 scenes, 2 steps."""
    out = tmp_path_factory.mktemp("backbone") / "run"
    pb.pretrain(replace(pb.PRESETS["debug"], output_dir=out))
    return out


@pytest.fixture(scope="session")
def tiny_act_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_random_act(tmp_path_factory.mktemp("policy") / "pretrained_model")
