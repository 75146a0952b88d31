"""``scripts/gpu_tree.sh``: parks the checkpoints a device call does not read outside what
travels, and puts every one of them back; bad input exits 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_tree.sh"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for rel in (
        "checkpoints/keep/w.bin",
        "checkpoints/other/w.bin",
        "checkpoints/executor_sim/w.bin",
        "checkpoints/executor_sim/results/r.json",
        "src.py",
    ):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(rel)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    return repo


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=repo, capture_output=True, text=True)


def test_stash_parks_the_rest_out_of_git_and_restore_puts_it_back(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    done = _run(repo, "stash", "keep", "executor_sim")
    assert done.returncode == 0, done.stderr
    assert (repo / "checkpoints/keep/w.bin").is_file()
    assert (repo / "checkpoints/executor_sim/w.bin").is_file()
    assert not (repo / "checkpoints/other").exists()
    assert not (repo / "checkpoints/executor_sim/results").exists()
    # the parked folder is ignored: git sees deletions, no new files to send
    status = _git(repo, "status", "--short", "--untracked-files=all")
    assert ".gpu_stash" not in status
    assert " D checkpoints/other/w.bin" in status
    again = _run(repo, "stash", "keep")
    assert again.returncode == 2
    assert "restore" in again.stderr
    done = _run(repo, "restore")
    assert done.returncode == 0, done.stderr
    assert _git(repo, "status", "--short") == ""
    assert not (repo / ".gpu_stash").exists()
    assert (repo / "checkpoints/executor_sim/results/r.json").read_text().endswith("r.json")


def test_bad_input_exits_2_and_moves_nothing(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    for args, named in (
        (["stash", "nope"], "checkpoints/nope"),
        (["stash"], "usage"),
        (["restore"], "nothing to restore"),
        (["wipe"], "usage"),
    ):
        done = _run(repo, *args)
        assert done.returncode == 2, args
        assert named in done.stderr, (args, done.stderr)
    assert _git(repo, "status", "--short") == ""
