"""``benchmarks/bench_policy_offline.py``: the action error of a policy on the expert
episodes its run did not train on, per composition kind; bad input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from script_main import MainRun

from executor_core.config_cli import save_config_json
from visuomotor_policy import train_policy as tp
from visuomotor_policy.configuration_policy import SO101_JOINTS

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "benchmarks/bench_policy_offline.py"
BENCH = REPO / SCRIPT


@pytest.fixture(scope="module")
def expert_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from executor_sim.generate import GenerateConfig, generate

    root = tmp_path_factory.mktemp("expert") / "ds"
    generate(GenerateConfig(root=root, num_episodes=4, num_frames=12, workers=1), progress=False)
    return root


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env, cwd=REPO
    )


def test_error_on_the_episodes_the_run_left_out(
    expert_root: Path, tiny_act_dir: Path, tmp_path: Path
) -> None:
    # one demo per family, failures allowed: the 12-frame episodes do not finish their task
    cfg = replace(
        tp.PRESETS["debug"], expert_root=expert_root, demos_per_family=1, successful_only=False
    )
    save_config_json(cfg, tmp_path / "train_config.json")
    trained = set(tp.select_expert_episodes(cfg))
    assert 0 < len(trained) < 4
    out = tmp_path / "offline.json"
    proc = _bench(
        "--conditions",
        f"a={tiny_act_dir},b={tiny_act_dir}",
        "--train_config",
        str(tmp_path / "train_config.json"),
        "--stride",
        "2",
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())["summary"]
    kinds = [k for k in ("training_compositions", "novel_compositions") if k in summary]
    assert sum(summary[k]["episodes"] for k in kinds) == 4 - len(trained)
    for kind in kinds:
        a, b = summary[kind]["a"], summary[kind]["b"]
        assert a["frames"] > 0
        assert a == b  # the same checkpoint twice: the same error
        assert 0 < a["l1_rad"] < 3.2
        assert tuple(a["l1_rad_per_joint"]) == SO101_JOINTS


def test_bad_input_exits_2_naming_it(
    tmp_path: Path, tiny_act_dir: Path, run_main: Callable[..., MainRun]
) -> None:
    out = str(tmp_path / "o.json")
    proc = run_main(SCRIPT, "--conditions", "nameonly", "--train_config", "x.json", "--output", out)
    assert proc.returncode == 2
    assert "'nameonly'" in proc.stderr
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
    assert not (tmp_path / "o.json").exists()
