"""``benchmarks/bench_grpo_signal.py``: the share of GRPO groups whose success varies, on a
model's own SDE samples, for the executed and the colour judge; bad input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
from script_main import MainRun

from self_distillation.grpo_trainer import pick_items
from self_distillation.propose import PRESETS as PROPOSE_PRESETS
from self_distillation.propose import run_propose
from self_distillation.task_items import load_items
from self_distillation.video_models import load_video_pipeline

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "benchmarks/bench_grpo_signal.py"
BENCH = REPO / SCRIPT


@pytest.fixture
def bench(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("benchmarks/bench_grpo_signal.py")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env, cwd=REPO
    )


def test_group_stats_count_groups_with_a_success_and_mixed_ones(bench: ModuleType) -> None:
    success = np.array(
        [[True, True, True], [True, False, False], [False, False, False], [False, True, False]]
    )
    stats = bench.group_stats(success)
    assert stats["videos"] == 12
    assert stats["success"] == pytest.approx(5 / 12)
    assert stats["groups_with_a_success"] == 0.75
    assert stats["groups_mixed"] == 0.5  # the all-success group teaches nothing either
    low, high = stats["success_ci95"]
    assert low < 5 / 12 < high


def test_a_tiny_run_judges_every_sample_twice(tmp_path: Path) -> None:
    items = tmp_path / "items"
    cfg = replace(PROPOSE_PRESETS["debug"], output_dir=items, num_sim_scenes=2, image_size_px=64)
    run_propose(cfg)
    model = tmp_path / "model"
    load_video_pipeline(None, "sim", "cpu", seed=0).save_pretrained(model)
    out = tmp_path / "signal.json"
    done = _run(
        "--models", f"random={model}", "--items", str(items), "--num_items", "2",
        "--group_size", "2", "--batch_items", "2", "--steps", "2", "--output", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())["random"]
    for judge in ("executed", "programmatic"):
        stats = result[judge]
        assert stats["videos"] == 4
        assert 0.0 <= stats["groups_mixed"] <= stats["groups_with_a_success"] <= 1.0
    assert np.isfinite(result["grain_excess"])


def test_bad_input_exits_2_naming_it(tmp_path: Path, run_main: Callable[..., MainRun]) -> None:
    base = ["--models", f"m={tmp_path}", "--items", str(tmp_path)]
    cases = [
        (base, "is not a pipeline folder"),
        (["--models", "m", "--items", str(tmp_path)], "is not name=path"),
        ([*base, "--group_size", "0"], "--group_size"),
        ([*base, "--eta", "2"], "--eta"),
    ]
    for args, named in cases:
        done = run_main(SCRIPT, *args, "--output", str(tmp_path / "x.json"))
        assert done.returncode == 2, args
        assert named in done.stderr, (args, done.stderr)
    assert not (tmp_path / "x.json").exists()


def test_draws_follow_the_folder_or_the_trainers_steps(
    bench: ModuleType, synthetic_items: Path
) -> None:
    ids = [it.item_id for it in load_items(synthetic_items)]
    first = SimpleNamespace(
        items=synthetic_items, num_items=3, batch_items=2, trainer_steps=0, families=()
    )
    assert [(k, [it.item_id for it in b]) for k, b in bench.draws(first)] == [
        (0, ids[:2]),
        (1, ids[2:3]),
    ]
    trainer = SimpleNamespace(
        items=synthetic_items, num_items=1, batch_items=2, trainer_steps=3, seed=5, families=()
    )
    drawn = bench.draws(trainer)
    assert [k for k, _ in drawn] == [0, 1, 2]
    for step, batch in drawn:
        assert [it.item_id for it in batch] == [ids[i] for i in pick_items(4, step, 2, 5)]
    with pytest.raises(ValueError, match="holds 4 < 9 items"):
        bench.draws(SimpleNamespace(**{**first.__dict__, "num_items": 9}))
    kept = bench.draws(SimpleNamespace(**{**first.__dict__, "families": ("pick_place",)}))
    assert [it.item_id for _, b in kept for it in b] == ids[:3]
    with pytest.raises(ValueError, match=r"no item of the families \('push',\)"):
        bench.draws(SimpleNamespace(**{**first.__dict__, "families": ("push",)}))
