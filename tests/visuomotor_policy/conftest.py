"""One tiny random ACT checkpoint per test session (saved as LeRobot's trainer saves one),
offline, one torch thread on the shared cores."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import pytest
import torch

from visuomotor_policy.testing import save_tiny_random_act

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_act_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_random_act(tmp_path_factory.mktemp("policy") / "pretrained_model")
