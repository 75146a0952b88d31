"""``benchmarks/bench_policy_train_scenes.py``: each policy replayed, through the goal
runner, on the scenes of the expert demos its run trained on; bad input exits 2."""

from __future__ import annotations

import importlib.util
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
from executor_sim.env import EnvConfig, make_env
from self_distillation.closed_loop import task_for_item
from visuomotor_policy import train_policy as tp

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "benchmarks/bench_policy_train_scenes.py"
BENCH = REPO / SCRIPT


@pytest.fixture(scope="module")
def run_config(tmp_path_factory: pytest.TempPathFactory) -> tp.TrainPolicyConfig:
    from executor_sim.generate import GenerateConfig, generate

    root = tmp_path_factory.mktemp("expert") / "ds"
    generate(GenerateConfig(root=root, num_episodes=4, num_frames=12, workers=1), progress=False)
    # one demo per family, failures allowed: the 12-frame episodes do not finish their task
    return replace(tp.PRESETS["debug"], expert_root=root, demos_per_family=1, successful_only=False)


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env, cwd=REPO
    )


def _module():
    sys.path.insert(0, str(BENCH.parent))  # the benchmark imports its sibling as a script does
    try:
        spec = importlib.util.spec_from_file_location("bench_policy_train_scenes", BENCH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH.parent))
    return module


def test_items_are_the_trained_demos_scenes_and_tasks(run_config: tp.TrainPolicyConfig) -> None:
    records = {int(r["episode_index"]): r for r in tp.read_episode_records(run_config.expert_root)}
    env = make_env(EnvConfig(image_size_px=64))
    try:
        items = _module().training_items(run_config, env)
        trained = tp.select_expert_episodes(run_config)
        assert [int(i.item_id.removeprefix("train-")) for i in items] == trained
        for item, index in zip(items, trained, strict=True):
            record = records[index]
            assert item.seed == record["seed"]
            task = task_for_item(env, item)  # what the benchmark's episode resets to
            assert task.prompt == record["prompt"]
            assert env.scene.to_json() == record["scene"]
    finally:
        env.close()


def test_every_condition_runs_every_trained_scene(
    run_config: tp.TrainPolicyConfig, tiny_act_dir: Path, tmp_path: Path
) -> None:
    save_config_json(run_config, tmp_path / "train_config.json")
    trained = tp.select_expert_episodes(run_config)
    out = tmp_path / "train_scenes.json"
    proc = _bench(
        "--conditions",
        f"a={tiny_act_dir},b={tiny_act_dir}",
        "--train_config",
        str(tmp_path / "train_config.json"),
        "--max_steps",
        "8",
        "--videos",
        "1",
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    videos = sorted(p.name for p in (tmp_path / "train_scenes_videos").iterdir())
    first = f"train-{trained[0]}"
    assert [v.rsplit("_", 1)[0] for v in videos] == [f"a_{first}", f"b_{first}"]
    result = json.loads(out.read_text())
    for name in ("a", "b"):
        mine = [r for r in result["records"] if r["condition"] == name]
        assert [int(r["item_id"].removeprefix("train-")) for r in mine] == trained
        assert all(r["steps"] <= 8 for r in mine)
        assert result["summary"]["rates"][name]["all"]["n"] == len(trained)
    assert result["max_steps"] == 8
    # the same checkpoint twice: the same outcome on every scene, a zero paired difference
    assert result["summary"]["paired"]["b - a"] == {"difference": 0.0, "ci95": [0.0, 0.0]}


def test_bad_input_exits_2_naming_it(
    tmp_path: Path, tiny_act_dir: Path, run_main: Callable[..., MainRun]
) -> None:
    """The shared checks (conditions, train config) and the evaluation's own settings."""
    out = tmp_path / "o.json"
    common = ("--train_config", str(tmp_path / "missing.json"), "--output", str(out))
    proc = run_main(SCRIPT, "--conditions", "nameonly", *common)
    assert proc.returncode == 2
    assert "'nameonly'" in proc.stderr
    proc = run_main(SCRIPT, "--conditions", f"a={tiny_act_dir}", *common)
    assert proc.returncode == 2
    assert "missing.json" in proc.stderr
    config = tmp_path / "train_config.json"
    save_config_json(tp.PRESETS["debug"], config)
    run = ("--conditions", f"a={tiny_act_dir}", "--train_config", str(config))
    for flag, value, named in (
        ("--max_steps", "0", "max_steps > 0"),
        ("--videos", "-1", "--videos must be >= 0, got -1"),
    ):
        proc = run_main(SCRIPT, *run, flag, value, "--output", str(out))
        assert proc.returncode == 2
        assert named in proc.stderr
        assert not out.exists()
