"""The GPU benchmark script runs end to end in its tiny CPU mode and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_backbones.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_backbones", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_measures_both_backbones(bench, tmp_path: Path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--dry_run", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report  # printed and written
    assert report["dry_run"] is True
    assert report["device"] == "cpu"
    for preset, paper_s in (("ltx2-i2v", 10.1), ("hunyuanvideo15-i2v", 112.0)):
        entry = report["results"][preset]
        assert entry["train_step"]["seconds"] > 0
        assert entry["train_step"]["loss"] > 0
        assert entry["video"]["paper_s"] == paper_s
        assert entry["video"]["steps"] == 2  # tiny mode; the real run uses the preset's
        assert entry["video"]["ratio_to_paper"] == entry["video"]["seconds"] / paper_s
        assert entry["max_train_batch"] == 1


def test_real_run_uses_the_presets_steps(bench):
    assert bench.MODEL_PRESETS["ltx2-i2v"].num_inference_steps == 8
    assert bench.MODEL_PRESETS["hunyuanvideo15-i2v"].num_inference_steps == 25
    assert bench.BUDGET_S <= 8 * 60


def test_bad_preset_and_no_gpu_exit_2(bench, tmp_path: Path, capsys):
    assert bench.main(["--dry_run", "--out", str(tmp_path / "x.json"), "--presets", "ltx3"]) == 2
    assert "'ltx3'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert bench.main(["--out", str(tmp_path / "x.json")]) == 2
        assert "CUDA" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
