"""Dataset generation: LeRobot round trip, metadata, and a killed run that resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from executor_sim.generate import (
    HELD_OUT_SEED_START,
    IMAGE_KEY,
    PRESETS,
    GenerateConfig,
    generate,
    main,
    normalise_cli_args,
    rollout_all,
)


def _cfg(root: Path, **kwargs: object) -> GenerateConfig:
    base = dict(
        root=root,
        repo_id="test/sim",
        num_episodes=2,
        num_frames=8,
        workers=1,
        resolution=32,
        tasks=("pick_place", "push"),
    )
    base.update(kwargs)
    return GenerateConfig(**base)  # type: ignore[arg-type]


def test_dataset_round_trip(tmp_path: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    cfg = _cfg(tmp_path / "ds")
    summary = generate(cfg, progress=False)
    assert summary["episodes_written"] == 2
    assert not cfg.cache_dir().exists()  # cache removed after a complete write
    ds = LeRobotDataset(
        "test/sim", root=cfg.root, delta_timestamps={"action": [0.0, 0.1, 0.2, 0.3]}
    )
    assert ds.num_episodes == 2
    assert ds.num_frames == 16
    assert ds.fps == 10
    item = ds[3]
    assert item[IMAGE_KEY].shape == (3, 32, 32)  # LeRobot returns CHW float in [0, 1]
    assert item["action"].shape == (4, 6)
    assert item["observation.state"].shape == (6,)
    assert item["task"].startswith(("put the", "push the"))
    # Actions are the expert's absolute targets: consecutive rows in the chunk differ by
    # at most the 0.3 rad/step velocity limit.
    assert float((item["action"][1:] - item["action"][:-1]).abs().max()) <= 0.3 + 1e-6
    lines = (cfg.root / "meta" / "executor_episodes.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["episode_index"] for r in records] == [0, 1]
    assert [r["seed"] for r in records] == [0, 1]
    assert [r["task_family"] for r in records] == ["pick_place", "push"]
    for r in records:
        assert r["solution"].startswith("1. ")
        assert r["paraphrases"]
        assert set(r["scene"]) >= {"cubes", "cube_poses", "bowl_xy", "mat_xy", "colors_rgb"}
        assert r["prompt"] == ds.meta.episodes[r["episode_index"]]["tasks"][0]


def test_killed_generator_resumes(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    args = [
        "--root",
        str(root),
        "--repo-id",
        "test/sim",
        "--num-episodes",
        "3",
        "--num-frames",
        "8",
        "--workers",
        "1",
        "--resolution",
        "32",
        "--keep-cache=true",  # so that the cache's leftovers can be checked at the end
    ]
    env = {**os.environ, "MUJOCO_GL": "egl", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor_sim.generate", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cache = root.with_name("ds.cache")
    deadline = time.time() + 240
    while time.time() < deadline and len(list(cache.glob("seed_*.npz"))) < 1:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cached = sorted(p.name for p in cache.glob("seed_*.npz"))
    assert 1 <= len(cached) <= 3, cached
    assert not root.exists() or len(cached) == 3  # never a half-written dataset
    first = np.load(cache / cached[0])["actions_rad"].copy()
    # what a write killed half way leaves: a temporary episode, a temporary dataset folder
    (cache / ".seed_0000002.npz.x1y2.tmp.npz").write_bytes(b"half an episode")
    (tmp_path / ".ds.x1y2.tmp" / "meta").mkdir(parents=True)
    main(args)  # same command again: continues
    records = [
        json.loads(line)
        for line in (root / "meta" / "executor_episodes.jsonl").read_text().splitlines()
    ]
    assert [r["seed"] for r in records] == [0, 1, 2]  # nothing lost, nothing twice
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds.cache"]  # leftovers removed
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".")]
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("test/sim", root=root)
    assert ds.num_episodes == 3
    assert ds.num_frames == 24
    seed = int(cached[0][5:12])
    rows = [i for i in range(ds.num_frames) if int(ds[i]["episode_index"]) == seed]
    actions = np.stack([ds[i]["action"].numpy() for i in rows])
    np.testing.assert_allclose(actions, first, atol=1e-6)  # the cached episode was used


def test_config_and_cli_helpers() -> None:
    assert "debug" in PRESETS
    assert PRESETS["debug"].num_episodes <= 3
    assert normalise_cli_args(["--num-episodes", "4", "--keep-cache=true"]) == [
        "--num_episodes",
        "4",
        "--keep_cache=true",
    ]
    with pytest.raises(ValueError, match="'fly'"):
        GenerateConfig(tasks=("fly",))
    with pytest.raises(ValueError, match=str(HELD_OUT_SEED_START)):
        GenerateConfig(seed=HELD_OUT_SEED_START - 1, num_episodes=5)


def test_stale_cache_is_refused(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "ds")
    cfg.cache_dir().mkdir(parents=True)
    (cfg.cache_dir() / "cache_signature.json").write_text('{"scene": "old"}\n')
    with pytest.raises(ValueError, match="another config or scene version"):
        rollout_all(cfg, progress=False)
