"""executor_node's model loading: any preset from a local folder, on a chosen device, warm.

``VideoWorldModel.from_local`` takes a saved pipeline or a real-scale LoRA export (whose
``executor_lora.json`` names the preset and base folder); ``executor_bringup.models.
load_models`` hands it the node's ``model_device`` and ``executor_base_dir``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_backbones import WRITERS, tiny_cfg

from executor_bringup.models import load_models
from executor_core.robot_description import RobotDescription, default_robot_path
from video_models.configuration_executor import MODEL_PRESETS
from video_models.modeling_executor import load_pretrained_pipeline, save_lora
from video_models.world_model import VideoWorldModel

REPO = Path(__file__).resolve().parents[2]


def _export(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny LTX-2 base folder and a LoRA export for it (as the trainer writes one)."""
    root = WRITERS["ltx2"](tmp_path / "base")
    pipe = load_pretrained_pipeline(tiny_cfg("ltx2"), root, device="cpu")
    with torch.no_grad():
        for name, p in pipe.transformer.named_parameters():
            if "lora_B" in name:
                p.add_(0.1)
    folder = save_lora(pipe.transformer, tmp_path / "executor", tiny_cfg("ltx2"))
    return root, folder


def test_lora_export_loads_on_the_chosen_device_and_warms_up(tmp_path: Path, monkeypatch):
    root, folder = _export(tmp_path)
    # The export names the preset: at its real size; shrink the preset for the CPU test.
    monkeypatch.setitem(MODEL_PRESETS, "ltx2-i2v", tiny_cfg("ltx2"))
    info = json.loads((folder / "executor_lora.json").read_text())
    assert info["preset"] == "ltx2-i2v"
    model = VideoWorldModel.from_local(folder, device="cpu", base_dir=root)
    assert model.pipeline.device.type == "cpu"
    assert model.pipeline.transformer.dtype == torch.float32  # CPU: no bf16
    assert model.warm_up() > 0
    frames = model(np.zeros((30, 40, 3), np.uint8), "put the red cube in the bowl", seed=0)
    assert frames.shape == (9, 64, 64, 3)
    with pytest.raises(FileNotFoundError, match="no hub"):
        VideoWorldModel.from_local(folder, device="cpu", base_dir=tmp_path / "elsewhere")


def test_load_models_passes_device_and_base(tmp_path: Path, monkeypatch):
    root, folder = _export(tmp_path)
    monkeypatch.setitem(MODEL_PRESETS, "ltx2-i2v", tiny_cfg("ltx2"))
    robot = RobotDescription.from_yaml(default_robot_path())
    video, idm, test_double = load_models(
        str(folder), str(REPO / "checkpoints" / "idm_sim"), robot, 0, "auto", str(root)
    )
    assert not test_double
    assert video.num_frames == 9
    assert idm is not None


def test_saved_pipeline_still_loads_through_from_local():
    model = VideoWorldModel.from_local(REPO / "checkpoints" / "executor_sim", device="cpu")
    assert (model.num_frames, model.size_px) == (16, 64)
