"""The sharded training path on 2 CPU processes (gloo): FSDP2 over the tiny LTX-2 preset.

``accelerate launch`` starts the two workers (``--multi_gpu`` + ``ACCELERATE_USE_CPU=1``,
see docs/video_models.md); the trainer shards the frozen base with ``fully_shard``
(``TrainConfig.fsdp``), exactly the code a multi-GPU run uses (docs/scale_out.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_backbones import WRITERS, tiny_cfg, write_tiny_cache

from video_models.modeling_executor import load_pretrained_pipeline

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

LAUNCHER = """
import logging
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, {here!r})
from tiny_backbones import tiny_cfg
from video_models.train_executor import DataConfig, TrainConfig, train

logging.basicConfig(level=logging.INFO)
root, cache, out, stop = sys.argv[1:5]
cfg = TrainConfig(
    model=replace(tiny_cfg("ltx2"), pretrained_path=Path(root)),
    data=DataConfig(cache_path=Path(cache), heldout_fraction=0.0),
    output_dir=Path(out),
    max_steps=2,
    batch_size=1,
    warmup_steps=0,
    learning_rate=1e-2,
    checkpoint_every=1,
    sample_every=100,
    stop_at_step=int(stop),
    fsdp=True,
)
train(cfg)
"""


def _launch(script: Path, port: int, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
        "ACCELERATE_USE_CPU": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "config" / "accelerate" / "fsdp2_cpu_2proc.yaml"),
        "--main_process_port",
        str(port),
        str(script),
        *args,
    ]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=400)


def test_fsdp_two_cpu_processes_train_resume_and_agree(tmp_path: Path, rendezvous_port: int):
    root = WRITERS["ltx2"](tmp_path / "tiny-ltx2")
    pipe = load_pretrained_pipeline(tiny_cfg("ltx2"), root, device="cpu")
    cache = write_tiny_cache(pipe, "ltx2", tmp_path / "clips.npz")
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER.format(here=str(HERE)))
    out = tmp_path / "fsdp"
    first = _launch(
        script, rendezvous_port, str(root), str(cache), str(out), "1"
    )  # stops after step 1
    assert first.returncode == 0, first.stderr[-3000:]
    second = _launch(
        script, rendezvous_port, str(root), str(cache), str(out), "0"
    )  # resumes, step 2
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from" in second.stderr
    state = json.loads((out / "checkpoints" / "step_000002" / "training_state.json").read_text())
    assert state["world_size"] == 2
    assert state["fsdp"] is True
    assert state["samples_per_rank"] == [2, 2]  # 1 clip per rank per step, 2 steps
    assert np.isfinite(state["loss"])
    c0, c1 = state["param_checksum_per_rank"]  # the replicated adapter agrees on both ranks
    assert c0 == pytest.approx(c1, rel=1e-9)
    # Each process held about half of the frozen base (the last shard may be smaller).
    for held in state["held_base_fraction_per_rank"]:
        assert 0.3 < held < 0.7
    # The exported adapter loads onto the unsharded base.
    trained = load_pretrained_pipeline(
        tiny_cfg("ltx2"), root, device="cpu", lora_path=out / "pipeline"
    )
    trained.set_progress_bar_config(disable=True)
    image = np.zeros((64, 64, 3), np.uint8)
    assert trained(image, "put the red cube in the bowl", seed=0).frames.shape == (1, 9, 64, 64, 3)
