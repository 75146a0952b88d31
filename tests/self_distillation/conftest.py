from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from self_distillation.tiny_vlm import build_tiny_idefics3

    return build_tiny_idefics3(tmp_path_factory.mktemp("tiny_vlm"))


@pytest.fixture(scope="session")
def debug_items(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four simulator scenes (32 px) with scene-grounded proposals, as executor-propose
    --preset debug writes them."""
    from dataclasses import replace

    from self_distillation.propose import PRESETS, run_propose

    out = tmp_path_factory.mktemp("proposals")
    run_propose(replace(PRESETS["debug"], output_dir=out))
    return out


@pytest.fixture(scope="session")
def synthetic_items(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four items on random 24 px images with hand-written proposals (no simulator)."""
    import numpy as np

    from self_distillation.proposal_schema import TaskProposal
    from self_distillation.task_items import TaskItem, save_items

    rng = np.random.default_rng(0)
    items = []
    for i, colour in enumerate(("red", "green", "blue", "yellow")):
        proposal = TaskProposal(
            f"put the {colour} cube in the bowl",
            (f"Grasp the {colour} cube.", "Carry it over the bowl.", "Release it."),
            f"the {colour} cube rests in the bowl",
            source="test",
            metadata={"task_family": "pick_place", "object": colour, "target": "bowl"},
        )
        image = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
        items.append(TaskItem(f"img{i}-0", f"img{i}", image, proposal))
    out = tmp_path_factory.mktemp("synthetic_items")
    save_items(items, out)
    return out
