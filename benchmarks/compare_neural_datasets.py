"""Executed success of neural-trajectory datasets made on the same items, paired.

``executor-neural-trajectories`` records, per episode, whether the IDM executed it in the
simulator (``executed_success`` in ``meta/executor_episodes.jsonl``). Two datasets drawn for
the same items (the same scenes, tasks and cameras) with another IDM or generator differ
item by item; this prints the successes of each, overall and per family and camera, and
the paired difference of each against the first (item bootstrap, 95 %).

    A=outputs/policy_sim/expert_video_idm/dataset
    B=outputs/idm_jitter/expert_video_idm_jitter/dataset
    .venv/bin/python benchmarks/compare_neural_datasets.py --datasets committed=$A,jitter=$B \\
        --output checkpoints/idm_sim_jitter/expert_video_idm.json

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


def compare(datasets: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    names = list(datasets)
    base = datasets[names[0]]
    for name in names[1:]:
        if set(datasets[name]) != set(base):
            only = sorted(set(datasets[name]) ^ set(base))[:5]
            raise ValueError(f"{name!r} and {names[0]!r} hold other items, e.g. {only}")
    out: dict[str, Any] = {}
    for group, keep in GROUPS.items():
        ids = sorted(i for i, r in base.items() if keep(r))
        if not ids:
            continue
        row: dict[str, Any] = {"n": len(ids)}
        outcomes = {
            n: {i: [bool(d[i]["executed_success"])] for i in ids} for n, d in datasets.items()
        }
        for name in names:
            row[name] = sum(v[0] for v in outcomes[name].values())
            if name != names[0]:
                d, low, high = paired_difference(outcomes[name], outcomes[names[0]])
                row[f"{name}_minus_{names[0]}"] = [round(100 * x, 1) for x in (d, low, high)]
        out[group] = row
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", required=True, help="name=dataset folder,... (2 or more)")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    datasets: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        for name, path in parse_named_paths(args.datasets, "--datasets").items():
            datasets[name] = read_episodes(path)
        if len(datasets) < 2:
            raise ValueError(f"--datasets {args.datasets!r} names fewer than 2 datasets")
        summary = compare(datasets)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        parser.error(str(exc))
    result = {"command": " ".join(["benchmarks/compare_neural_datasets.py", *argv]), **summary}
    write_json_atomic(args.output, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
