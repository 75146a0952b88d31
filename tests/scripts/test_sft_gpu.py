"""``scripts/sft_gpu.sh`` (the SFT baseline given more compute on a GPU machine): a step
count that is not a positive integer exits 2 before anything is set up or trained."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bad_step_counts_exit_2_and_name_the_value(tmp_path: Path) -> None:
    for steps in ("0", "800 x", "-5"):
        env = {**os.environ, "STEPS": steps, "PYTHON": "false", "RUN_DIR": str(tmp_path / "run")}
        done = subprocess.run(
            ["bash", "scripts/sft_gpu.sh", str(tmp_path / "out"), "1"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2, done.stderr
        assert "STEPS must be positive integers, got" in done.stderr
        assert not (tmp_path / "run").exists()


def test_wait_named_names_the_failed_job_with_its_log(tmp_path: Path) -> None:
    """scripts/gpu_setup.sh's wait_named: every job is waited for; a failed one is named with
    the tail of its log, and the return code says that one failed."""
    (tmp_path / "bad.log").write_text("the reason it failed\n")
    script = (
        "source scripts/gpu_setup.sh >/dev/null || exit 9; "
        '(exit 3) & a=$!; (sleep 0.2) & b=$!; wait_named "$T" bad:$a good:$b; echo "rc=$?"'
    )
    env = {**os.environ, "PYTHON": str(REPO / ".venv" / "bin" / "python"), "T": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert "bad failed\nthe reason it failed\nrc=1" in done.stdout, done.stdout + done.stderr
    assert "good failed" not in done.stdout


def test_bad_shapes_exit_2_and_name_the_value(tmp_path: Path) -> None:
    for shapes in ("4x8", "2x8x8 4-8-8", "0x8x8"):
        env = {**os.environ, "SHAPES": shapes, "PYTHON": "false", "RUN_DIR": str(tmp_path / "r")}
        done = subprocess.run(
            ["bash", "scripts/sft_gpu.sh", str(tmp_path / "out"), "1"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2, done.stderr
        assert "SHAPES must be TxHxW patch sizes (e.g. 4x8x8), got" in done.stderr
        assert not (tmp_path / "r").exists()
