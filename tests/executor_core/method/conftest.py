from __future__ import annotations

import os

import pytest
from pathlib import Path
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
torch.set_num_threads(1)



@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from executor_core.method.tiny_vlm import build_tiny_idefics3

    return build_tiny_idefics3(tmp_path_factory.mktemp("tiny_vlm"))
