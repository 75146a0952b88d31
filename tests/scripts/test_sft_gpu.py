"""``scripts/sft_gpu.sh`` (the SFT baseline given more compute, or the shape race, on a GPU
machine): bad input exits 2 before anything is set up or trained."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STEPS", "0", "STEPS must be positive integers, got '0'"),
        ("STEPS", "800 x", "STEPS must be positive integers, got 'x'"),
        ("STEPS", "-5", "STEPS must be positive integers, got '-5'"),
        ("SHAPES", "4x8", "SHAPES must be TxHxW patch sizes (e.g. 4x8x8), got '4x8'"),
        ("SHAPES", "2x8x8 4-8-8", "SHAPES must be TxHxW patch sizes (e.g. 4x8x8), got '4-8-8'"),
        ("SHAPES", "0x8x8", "SHAPES must be TxHxW patch sizes (e.g. 4x8x8), got '0x8x8'"),
    ],
)
def test_bad_values_exit_2_and_name_the_value(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    """A bad step count or patch size exits 2 before anything is set up or trained."""
    env = {**os.environ, variable: value, "PYTHON": "false", "RUN_DIR": str(tmp_path / "run")}
    done = subprocess.run(
        ["bash", "scripts/sft_gpu.sh", str(tmp_path / "out"), "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
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
