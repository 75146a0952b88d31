"""Executed success of runs made on the same items, paired: datasets or goal-runner runs.

``executor-neural-trajectories`` records, per episode, whether the IDM executed it in the
simulator (``executed_success`` in ``meta/executor_episodes.jsonl``). Two datasets drawn for
the same items (the same scenes, tasks and cameras) with another IDM or generator differ
item by item; this prints the successes of each, overall and per family and camera, and
the paired difference of each against the first (item bootstrap, 95 %).

    A=outputs/policy_sim/expert_video_idm/dataset
    B=outputs/idm_jitter/expert_video_idm_jitter/dataset
    .venv/bin/python benchmarks/compare_neural_datasets.py --datasets committed=$A,jitter=$B \\
        --output checkpoints/idm_sim_jitter/expert_video_idm.json

``--goal_runs`` compares outputs of ``benchmarks/bench_goal_runner.py`` the same way (one
retiming profile, ``--variant``), e.g. two trainings of one recipe or two models on a split:

    R=checkpoints/executor_sim/results
    A=$R/rl_gpu/validation_anchor.json B=$R/rl_gpu2/validation_anchor_84.json
    .venv/bin/python benchmarks/compare_neural_datasets.py --goal_runs earlier=$A,again=$B \\
        --output $R/rl_gpu2/anchor_rerun_validation.json

``--policy_runs`` compares policies evaluated by ``executor-dreamgen`` on the same items of
one ``--split``: each name is the condition to read from that report's ``episodes.jsonl``
(the policies may come from different reports), e.g. the hand-frame policy against the
image policy it replaced as the headline:

    P=checkpoints/policy_sim
    OLD=$P/history/state_free_step5000_four_actions/report/episodes.jsonl
    .venv/bin/python benchmarks/compare_neural_datasets.py --split held_out \\
        --policy_runs expert_only=$OLD,hp_expert_only=$P/report/episodes.jsonl \\
        --output $P/report/against_image_policy/held_out_expert_only.json

``--candidate_runs`` compares outputs of ``benchmarks/bench_candidate_critics.py`` made with
the same Executor and seeds, so the same imagined videos, executed by other IDMs. Every
video counts (pooled; an item's videos are resampled together), and ``--depicted_only`` keeps the
videos the programmatic judge passes, those that *show* the task done. That splits the
loss between what is imagined and how it is followed:

    D=checkpoints/executor_sim/results/idm_goal_degrade/critics_validation
    .venv/bin/python benchmarks/compare_neural_datasets.py --depicted_only \\
        --candidate_runs idm_sim=${D}_idm_sim.json,degrade=${D}_degrade.json \\
        --output ${D}_depicted_compare.json

Writes one JSON (atomically) and prints it. Bad input exits 2 and names the value.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from executor_core.atomic_io import write_json_atomic
from executor_core.config_cli import OneLineArgumentParser, parse_named_paths
from self_distillation.stats import paired_difference

EPISODES = Path("meta") / "executor_episodes.jsonl"
GROUPS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "all": lambda r: True,
    "camera_fixed": lambda r: not r["camera_jittered"],
    "camera_moved": lambda r: bool(r["camera_jittered"]),
    "pick_place": lambda r: r["task_family"] == "pick_place",
    "push": lambda r: r["task_family"] == "push",
    "stack": lambda r: r["task_family"] == "stack",
}


def read_episodes(root: Path) -> dict[str, dict[str, Any]]:
    """item id -> the episode's record (one generator per dataset)."""
    path = root / EPISODES
    if not path.is_file():
        raise ValueError(f"{str(root)!r} is not a neural-trajectory dataset (no {EPISODES})")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    keys = [(r["item_id"], r["generator"]) for r in records]
    if len({g for _, g in keys}) != 1:
        raise ValueError(f"{str(root)!r} mixes generators {sorted({g for _, g in keys})}")
    return {r["item_id"]: r for r in records}


def read_goal_run(path: Path, variant: str) -> dict[str, dict[str, Any]]:
    """item id -> the record the comparison reads, from a goal-runner benchmark output (its
    camera never moves)."""
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a file")
    records = json.loads(path.read_text()).get("records")
    first = records[0] if records else {}
    if variant not in first:
        known = sorted(k for k, v in first.items() if isinstance(v, dict))
        raise ValueError(f"{str(path)!r} has no runs of --variant {variant!r}; it has {known}")
    return {
        r["item_id"]: {
            "task_family": r["family"],
            "camera_jittered": False,
            "executed_success": bool(r[variant]["success"]),
        }
        for r in records
    }


def read_policy_run(path: Path, condition: str, split: str) -> dict[str, dict[str, Any]]:
    """item id -> the record the comparison reads, for one condition and split of an
    ``executor-dreamgen`` report (``novel_environment`` is the moved camera)."""
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a file")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    found = {(r["split"], r["condition"]) for r in records}
    if (split, condition) not in found:
        raise ValueError(
            f"{str(path)!r} has no condition {condition!r} on split {split!r}; it has "
            f"{sorted(found)}"
        )
    return {
        r["item_id"]: {
            "task_family": r["family"],
            "camera_jittered": split == "novel_environment",
            "executed_success": bool(r["success"]),
        }
        for r in records
        if (r["split"], r["condition"]) == (split, condition)
    }


def read_candidate_run(path: Path, depicted_only: bool) -> dict[str, dict[str, Any]]:
    """item id -> the record the comparison reads: one outcome per imagined video (only those
    the programmatic judge passes with ``depicted_only``), and the videos' judge readings,
    which must match across the compared runs."""
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a file")
    records = json.loads(path.read_text()).get("records") or []
    if not records or "candidates" not in records[0]:
        raise ValueError(f"{str(path)!r} is not a bench_candidate_critics output")
    out = {}
    for r in records:
        kept = [c for c in r["candidates"] if c["prog_success"] or not depicted_only]
        if kept:
            out[r["item_id"]] = {
                "task_family": r["family"],
                "camera_jittered": False,
                "executed_success": [bool(c["executed"]) for c in kept],
                "videos": [(c["prog_score"], c["ea_score"]) for c in kept],
            }
    return out


def outcomes_of(record: dict[str, Any]) -> list[bool]:
    """An item's executed outcomes: one, or one per video of a candidate run."""
    executed = record["executed_success"]
    return [bool(e) for e in executed] if isinstance(executed, list) else [bool(executed)]


def compare(datasets: dict[str, dict[str, dict[str, Any]]], level: float = 0.95) -> dict[str, Any]:
    names = list(datasets)
    base = datasets[names[0]]
    for name in names[1:]:
        if set(datasets[name]) != set(base):
            only = sorted(set(datasets[name]) ^ set(base))[:5]
            raise ValueError(f"{name!r} and {names[0]!r} hold other items, e.g. {only}")
        if other := [i for i in base if datasets[name][i].get("videos") != base[i].get("videos")]:
            raise ValueError(
                f"{name!r} and {names[0]!r} imagined other videos, e.g. for {other[0]!r}"
            )
    out: dict[str, Any] = {"interval_level": level}
    for group, keep in GROUPS.items():
        ids = sorted(i for i, r in base.items() if keep(r))
        if not ids:
            continue
        row: dict[str, Any] = {"n": len(ids)}
        outcomes = {n: {i: outcomes_of(d[i]) for i in ids} for n, d in datasets.items()}
        if any(len(v) > 1 for v in outcomes[names[0]].values()):
            row["samples"] = sum(len(v) for v in outcomes[names[0]].values())
        for name in names:
            row[name] = sum(sum(v) for v in outcomes[name].values())
            if name != names[0]:
                d, low, high = paired_difference(outcomes[name], outcomes[names[0]], level=level)
                row[f"{name}_minus_{names[0]}"] = [round(100 * x, 1) for x in (d, low, high)]
        out[group] = row
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--datasets", help="name=dataset folder,... (2 or more)")
    source.add_argument("--goal_runs", help="name=bench_goal_runner JSON,... (2 or more)")
    source.add_argument(
        "--policy_runs", help="condition=executor-dreamgen episodes.jsonl,... (2 or more)"
    )
    source.add_argument(
        "--candidate_runs", help="name=bench_candidate_critics JSON,... (2 or more)"
    )
    parser.add_argument(
        "--depicted_only",
        action="store_true",
        help="--candidate_runs: only the videos the programmatic judge passes",
    )
    parser.add_argument("--variant", default="per_interval", help="--goal_runs: the profile")
    parser.add_argument("--split", default="held_out", help="--policy_runs: the split")
    parser.add_argument(
        "--level", type=float, default=0.95, help="the paired intervals' level, in (0, 1)"
    )
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if not 0.0 < args.level < 1.0:
        parser.error(f"--level must be in (0, 1), got {args.level!r}")
    if args.depicted_only and not args.candidate_runs:
        parser.error("--depicted_only reads --candidate_runs")
    datasets: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        readers: dict[str, Callable[[str, Path], dict[str, dict[str, Any]]]] = {
            "datasets": lambda _name, path: read_episodes(path),
            "goal_runs": lambda _name, path: read_goal_run(path, args.variant),
            "policy_runs": lambda name, path: read_policy_run(path, name, args.split),
            "candidate_runs": lambda _name, path: read_candidate_run(path, args.depicted_only),
        }
        source_name = next(n for n in readers if getattr(args, n))
        flag, text = f"--{source_name}", getattr(args, source_name)
        for name, path in parse_named_paths(text, flag).items():
            datasets[name] = readers[source_name](name, path)
        if len(datasets) < 2:
            raise ValueError(f"{flag} {text!r} names fewer than 2 runs")
        summary = compare(datasets, args.level)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        parser.error(str(exc))
    result = {"command": " ".join(["benchmarks/compare_neural_datasets.py", *argv]), **summary}
    write_json_atomic(args.output, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
