"""``scripts/prepare_gpu_inputs.sh`` (what a GPU call carries, made on the CPU): unknown
steps exit 2 naming them, made outputs are kept, and a step whose inputs are missing stops
naming them. The steps' real work (proposals, pack, wheels, debs) is timed by running the
script itself (its figures are in the closing note of issue 14), not here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "scripts/prepare_gpu_inputs.sh"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A tree with the script and an installed-looking venv (the script checks for it)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / SCRIPT, tmp_path / SCRIPT)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexit 3\n")  # any real work would fail loudly
    python.chmod(0o755)
    return tmp_path


def _run(tree: Path, *steps: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(tree / SCRIPT), *steps],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("step", ["packs", "all", "--help"])
def test_unknown_step_exits_2_naming_it(tree: Path, step: str) -> None:
    done = _run(tree, "proposals", step)
    assert done.returncode == 2
    assert f"unknown step '{step}'" in done.stderr
    assert "proposals heldout pack site so101 gl" in done.stderr
    assert not (tree / "outputs").exists()


def test_a_made_output_is_kept(tree: Path) -> None:
    made = tree / "outputs" / "wt" / "pack" / "proposals"
    made.mkdir(parents=True)
    (made / "items.jsonl").write_text("kept\n")
    done = _run(tree, "proposals")
    assert done.returncode == 0, done.stderr
    assert "outputs/wt/pack/proposals is there (FORCE=1 remakes it)" in done.stdout
    assert (made / "items.jsonl").read_text() == "kept\n"


def test_pack_without_its_inputs_stops_naming_them(tree: Path) -> None:
    done = _run(tree, "pack")
    assert done.returncode == 1
    assert "pack needs outputs/wt/pack/{proposals,heldout}" in done.stderr
    assert not (tree / "outputs" / "wt" / "pack512").exists()


def test_a_failed_step_leaves_nothing_in_place(tree: Path) -> None:
    """FORCE=1 remakes the pack with a python that fails: the made pack stays as it was."""
    for name in ("proposals", "heldout"):
        (tree / "outputs" / "wt" / "pack" / name).mkdir(parents=True)
    pack = tree / "outputs" / "wt" / "pack512"
    pack.mkdir()
    (pack / "old").write_text("old\n")
    done = _run(tree, "pack", FORCE="1")
    assert done.returncode == 3
    assert (pack / "old").read_text() == "old\n"
