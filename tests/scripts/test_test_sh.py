"""``scripts/test.sh`` (the README's and CI's test command): a bad worker count exits 2
and names the value before lint or pytest run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["x", "-1", "2.5", "two"])
def test_bad_worker_count_exits_2_naming_it(value: str) -> None:
    env = {**os.environ, "TEST_WORKERS": value}
    done = subprocess.run(
        ["bash", "scripts/test.sh", "--collect-only"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"TEST_WORKERS must be a whole number, got '{value}'" in done.stderr
    assert "All checks passed" not in done.stdout  # it stopped before lint
