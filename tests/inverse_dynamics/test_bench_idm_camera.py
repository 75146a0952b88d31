"""``benchmarks/bench_idm_camera.py``: IDMs replay the same fresh expert rollouts with a fixed
and a moved camera, paired against the first; bad input exits 2 and names the value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from script_main import MainRun

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "benchmarks/bench_idm_camera.py"
BENCH = REPO / SCRIPT
IDM = str(REPO / "checkpoints" / "idm_sim")


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env, cwd=REPO
    )


def test_two_idms_replay_the_same_rollouts_on_both_cameras(tmp_path: Path) -> None:
    out = tmp_path / "camera.json"
    done = _bench(
        "--checkpoints",
        f"a={IDM},b=checkpoints/idm_sim_jitter",
        "--num_episodes",
        "2",
        "--num_frames",
        "16",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result["summary"]) == {"fixed", "moved"}
    for camera in ("fixed", "moved"):
        rows = result["summary"][camera]
        assert rows["a"]["n"] == rows["b"]["n"] == 2
        assert "closed_loop_minus_a" in rows["b"]
        assert "closed_loop_minus_a" not in rows["a"]
        seeds = {
            idm: [r["seed"] for r in result["records"] if r["camera"] == camera and r["idm"] == idm]
            for idm in ("a", "b")
        }
        assert seeds["a"] == seeds["b"] == [1_000_000, 1_000_001]
        diff = rows["b"]["closed_loop_minus_a"][0]
        assert diff == pytest.approx(50.0 * (rows["b"]["closed_loop"] - rows["a"]["closed_loop"]))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--checkpoints", "a=/no/such/idm"], "/no/such/idm"),
        (["--checkpoints", f"a={IDM},a={IDM}"], "'a' twice"),
        (["--checkpoints", f"a={IDM}", "--num_episodes", "0"], "got 0"),
        (["--checkpoints", f"a={IDM}", "--camera_jitter_m", "0.2"], "got 0.2"),
    ],
)
def test_bad_input_exits_2_naming_it(
    tmp_path: Path, args: list[str], named: str, run_main: Callable[..., MainRun]
) -> None:
    done = run_main(SCRIPT, *args, "--output", str(tmp_path / "x.json"))
    assert done.returncode == 2
    assert named in done.stderr
    assert not (tmp_path / "x.json").exists()
