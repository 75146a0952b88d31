"""``benchmarks/compare_neural_datasets.py``: executed successes of datasets drawn for the
same items, per family and camera, paired against the first; bad input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "compare_neural_datasets.py"


def _dataset(root: Path, generator: str, executed: list[bool]) -> Path:
    """A dataset's episode records only: what the comparison reads."""
    families = ("push", "stack")
    records = [
        {
            "item_id": f"item-{i}",
            "generator": generator,
            "task_family": families[i % 2],
            "camera_jittered": i < 2,
            "executed_success": ok,
        }
        for i, ok in enumerate(executed)
    ]
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "executor_episodes.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records)
    )
    return root


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env, cwd=REPO
    )


def test_counts_per_group_and_paired_difference(tmp_path: Path) -> None:
    a = _dataset(tmp_path / "a", "expert_video_idm", [False, False, True, False])
    b = _dataset(tmp_path / "b", "expert_video_idm", [True, True, True, False])
    out = tmp_path / "cmp.json"
    done = _run("--datasets", f"a={a},b={b}", "--output", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["all"] == {"n": 4, "a": 1, "b": 3, "b_minus_a": [50.0, 0.0, 100.0]}
    assert result["camera_moved"]["a"] == 0
    assert result["camera_moved"]["b"] == 2
    assert result["camera_fixed"]["b_minus_a"][0] == 0.0
    assert result["push"]["n"] == result["stack"]["n"] == 2
    assert "pick_place" not in result  # no item of that family


def test_bad_input_exits_2_naming_it(tmp_path: Path) -> None:
    a = _dataset(tmp_path / "a", "g", [True, False])
    other = _dataset(tmp_path / "c", "g", [True, False, True])
    cases = [
        (["--datasets", f"a={a}"], "fewer than 2"),
        (["--datasets", f"a={a},b={tmp_path / 'none'}"], "is not a neural-trajectory dataset"),
        (["--datasets", f"a={a},c={other}"], "hold other items"),
        (["--datasets", f"a={a},a={a}"], "names 'a' twice"),
    ]
    for args, named in cases:
        done = _run(*args, "--output", str(tmp_path / "x.json"))
        assert done.returncode == 2, args
        assert named in done.stderr, (args, done.stderr)
    assert not (tmp_path / "x.json").exists()


def _goal_run(path: Path, successes: list[bool]) -> Path:
    """A ``bench_goal_runner.py`` output's records only: what the comparison reads."""
    families = ("push", "pick_place", "stack")
    records = [
        {
            "item_id": f"seen-{i}",
            "family": families[i % 3],
            "expert": {"success": True, "steps": 47},
            "per_interval": {"success": ok, "steps": 60 if ok else 240},
        }
        for i, ok in enumerate(successes)
    ]
    path.write_text(json.dumps({"command": "x", "records": records}))
    return path


def test_goal_runs_pair_per_family_and_name_a_missing_variant(tmp_path: Path) -> None:
    a = _goal_run(tmp_path / "a.json", [False, False, False, True, False, False])
    b = _goal_run(tmp_path / "b.json", [True, False, False, True, True, False])
    out = tmp_path / "cmp.json"
    done = _run("--goal_runs", f"first={a},second={b}", "--output", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["all"]["first"] == 1
    assert result["all"]["second"] == 3
    assert result["all"]["second_minus_first"][0] == round(100 * 2 / 6, 1)
    assert result["push"] == {
        "n": 2,
        "first": 1,
        "second": 2,
        "second_minus_first": [50.0, 0.0, 100.0],
    }
    assert result["stack"]["second"] == 0
    assert "camera_moved" not in result  # the goal runner's camera never moves
    done = _run(
        "--goal_runs", f"first={a},second={b}", "--variant", "uniform", "--output", str(out)
    )
    assert done.returncode == 2
    assert "no runs of --variant 'uniform'" in done.stderr
    assert "per_interval" in done.stderr
    both = _run(
        "--goal_runs", f"first={a},second={b}", "--datasets", f"x={a}", "--output", str(out)
    )
    assert both.returncode == 2


def _policy_report(path: Path, condition: str, successes: list[bool]) -> Path:
    """An ``executor-dreamgen`` report's episodes: two splits, one condition."""
    families = ("push", "pick_place")
    records = [
        {
            "split": split,
            "condition": condition,
            "item_id": f"seen-{i}",
            "family": families[i % 2],
            "success": ok if split == "held_out" else not ok,
        }
        for split in ("held_out", "novel_environment")
        for i, ok in enumerate(successes)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_policy_runs_read_each_condition_from_its_own_report(tmp_path: Path) -> None:
    a = _policy_report(tmp_path / "old.jsonl", "expert_only", [False, False, True, False])
    b = _policy_report(tmp_path / "new.jsonl", "hp_expert_only", [True, False, True, True])
    out = tmp_path / "cmp.json"
    done = _run("--policy_runs", f"expert_only={a},hp_expert_only={b}", "--output", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["all"]["expert_only"] == 1
    assert result["all"]["hp_expert_only"] == 3
    assert result["all"]["hp_expert_only_minus_expert_only"][0] == 50.0
    assert "camera_moved" not in result
    env = ("--split", "novel_environment")
    done = _run("--policy_runs", f"expert_only={a},hp_expert_only={b}", *env, "--output", str(out))
    assert done.returncode == 0, done.stderr
    moved = json.loads(out.read_text())["camera_moved"]
    assert (moved["expert_only"], moved["hp_expert_only"]) == (3, 1)
    wrong = _run("--policy_runs", f"image={a},hp_expert_only={b}", "--output", str(out))
    assert wrong.returncode == 2
    assert "no condition 'image' on split 'held_out'" in wrong.stderr


def test_level_sets_the_interval_and_is_recorded(tmp_path: Path) -> None:
    outcomes = [True, False, True, True, False, True, False, True]
    a = _dataset(tmp_path / "a", "g", [False] * 8)
    b = _dataset(tmp_path / "b", "g", outcomes)
    rows = {}
    for level in ("0.5", "0.975"):
        out = tmp_path / f"cmp{level}.json"
        done = _run("--datasets", f"a={a},b={b}", "--level", level, "--output", str(out))
        assert done.returncode == 0, done.stderr
        result = json.loads(out.read_text())
        assert result["interval_level"] == float(level)
        rows[level] = result["all"]["b_minus_a"]
    assert rows["0.5"][0] == rows["0.975"][0] == 62.5
    assert rows["0.975"][1] < rows["0.5"][1] <= 62.5 <= rows["0.5"][2] < rows["0.975"][2]
    done = _run("--datasets", f"a={a},b={b}", "--level", "95", "--output", str(tmp_path / "x"))
    assert done.returncode == 2
    assert "--level must be in (0, 1), got 95.0" in done.stderr


def _candidate_run(path: Path, executed: list[list[bool]], shown: list[list[bool]]) -> Path:
    """A bench_candidate_critics output: per item, its videos' outcomes and judge readings."""
    records = [
        {
            "item_id": f"seen-{i}",
            "family": ("push", "stack")[i % 2],
            "candidates": [
                {"executed": e, "prog_success": p, "prog_score": float(p), "ea_score": 0.5 + j}
                for j, (e, p) in enumerate(zip(ex, sh, strict=True))
            ],
        }
        for i, (ex, sh) in enumerate(zip(executed, shown, strict=True))
    ]
    path.write_text(json.dumps({"records": records}))
    return path


def test_candidate_runs_count_every_video_or_the_depicted_ones(tmp_path: Path) -> None:
    shown = [[True, False], [True, True], [False, False]]
    a = _candidate_run(tmp_path / "a.json", [[False, True], [False, False], [True, False]], shown)
    b = _candidate_run(tmp_path / "b.json", [[True, True], [True, False], [True, False]], shown)
    runs = f"--candidate_runs=sharp={a},blur={b}"
    done = _run(runs, f"--output={tmp_path / 'all.json'}")
    assert done.returncode == 0, done.stderr
    every = json.loads((tmp_path / "all.json").read_text())["all"]
    assert (every["n"], every["samples"], every["sharp"], every["blur"]) == (3, 6, 2, 4)
    done = _run(runs, "--depicted_only", f"--output={tmp_path / 'shown.json'}")
    assert done.returncode == 0, done.stderr
    depicted = json.loads((tmp_path / "shown.json").read_text())
    # item 2 shows nothing and drops out; items 0 and 1 keep 1 and 2 videos
    assert (depicted["all"]["n"], depicted["all"]["samples"]) == (2, 3)
    assert (depicted["all"]["sharp"], depicted["all"]["blur"]) == (0, 2)
    assert depicted["all"]["blur_minus_sharp"][0] == 66.7  # 2 more of the 3 videos shown
    other = _candidate_run(tmp_path / "c.json", [[True, True]] * 3, [[False, True]] * 3)
    done = _run(f"--candidate_runs=sharp={a},other={other}", f"--output={tmp_path / 'x.json'}")
    assert done.returncode == 2
    assert "'other' and 'sharp' imagined other videos, e.g. for 'seen-0'" in done.stderr
    done = _run(f"--goal_runs=sharp={a},blur={b}", "--depicted_only", f"--output={tmp_path / 'y'}")
    assert done.returncode == 2
    assert "--depicted_only reads --candidate_runs" in done.stderr
