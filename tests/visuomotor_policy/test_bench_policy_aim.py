"""``benchmarks/bench_policy_aim.py``: where each policy's first chunk goes on its demo
scenes and on held-out items; bad input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from script_main import MainRun

from executor_core.config_cli import save_config_json
from visuomotor_policy import train_policy as tp

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "benchmarks/bench_policy_aim.py"
BENCH = REPO / SCRIPT


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env, cwd=REPO
    )


@pytest.fixture(scope="module")
def run_config(tmp_path_factory: pytest.TempPathFactory) -> tp.TrainPolicyConfig:
    from executor_sim.generate import GenerateConfig, generate

    root = tmp_path_factory.mktemp("expert") / "ds"
    generate(GenerateConfig(root=root, num_episodes=3, num_frames=8, workers=1), progress=False)
    return replace(tp.PRESETS["debug"], expert_root=root, demos_per_family=1, successful_only=False)


def test_every_condition_aims_on_both_scene_sets(
    run_config: tp.TrainPolicyConfig, tiny_act_dir: Path, tmp_path: Path
) -> None:
    save_config_json(run_config, tmp_path / "train_config.json")
    out = tmp_path / "aim.json"
    proc = _bench(
        "--conditions",
        f"a={tiny_act_dir}",
        "--train_config",
        str(tmp_path / "train_config.json"),
        "--num_items",
        "2",
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    demos = len(tp.select_expert_episodes(run_config))
    assert result["summary"]["a"]["demo_scenes"]["n"] == demos
    assert result["summary"]["a"]["held_out"]["n"] == 2
    rows = result["records"]
    assert len(rows) == demos + 2
    for row in rows:
        assert np.isfinite(row["closest_to_named_m"])
        assert row["closest_to_named_m"] >= 0
        if row["closest_to_other_m"] is not None:
            assert row["nearer_another_cube"] == (
                row["closest_to_other_m"] < row["closest_to_named_m"]
            )


def test_bad_input_exits_2(
    tiny_act_dir: Path, tmp_path: Path, run_main: Callable[..., MainRun]
) -> None:
    proc = run_main(
        SCRIPT,
        "--conditions",
        f"a={tiny_act_dir}",
        "--train_config",
        str(tmp_path / "missing.json"),
        "--output",
        str(tmp_path / "o.json"),
    )
    assert proc.returncode == 2
    assert "missing.json" in proc.stderr
