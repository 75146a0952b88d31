"""How well an execution critic picks, offline, among imagined videos already executed.

Reads labelled videos (``bench_candidate_critics.py --save_videos``: every candidate of an
item's first segment, executed in the simulator) and a critic folder; per number of
candidates K, how often the video the critic rates best executes, against candidate 0 (one
imagining, what the runner tracks without a critic) and the oracle (any of the K executes),
with a paired item-bootstrap interval; and the AUC of its score for "executes", overall,
within items (pairs of one item only: what a pick among candidates needs) and per family:

    .venv/bin/python benchmarks/bench_execution_critic.py \\
        --critic checkpoints/execution_critic_sim \\
        --data outputs/critic_data/validation.npz \\
        --output checkpoints/executor_sim/results/execution_critic/offline_validation.json

The closed loop (the runner with ``--critic learned``) is ``bench_goal_runner.py``'s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from execution_critic.modeling_critic import ExecutionCritic
from execution_critic.processing_critic import (
    LabelledVideos,
    execution_probability,
    load_labelled_videos,
)
from execution_critic.train_critic import pick_rates, rank_auc, within_item_auc
from executor_core.atomic_io import write_json_atomic
from self_distillation.stats import paired_difference


def picks_against_first(scores: np.ndarray, data: LabelledVideos, k: int) -> dict[str, Any]:
    """Best-of-``k`` rates and the paired difference picked - candidate 0 (points)."""
    picked: dict[str, list[bool]] = {}
    first: dict[str, list[bool]] = {}
    for item in np.unique(data.item_index):
        rows = np.flatnonzero(data.item_index == item)[:k]
        picked[str(item)] = [bool(data.executed[rows[int(np.argmax(scores[rows]))]])]
        first[str(item)] = [bool(data.executed[rows[0]])]
    d, low, high = paired_difference(picked, first)
    return {
        **pick_rates(scores, data, k),
        "picked_minus_candidate_0": [100 * d, 100 * low, 100 * high],
    }


def summarize(scores: np.ndarray, data: LabelledVideos, ks: tuple[int, ...]) -> dict[str, Any]:
    families = sorted(set(data.family.tolist()))
    return {
        "videos": len(scores),
        "items": len(np.unique(data.item_index)),
        "execution_rate": float(data.executed.mean()),
        "auc": rank_auc(scores, data.executed),
        "within_item_auc": within_item_auc(scores, data.executed, data.item_index),
        "auc_per_family": {
            f: rank_auc(scores[data.family == f], data.executed[data.family == f]) for f in families
        },
        "execution_rate_per_family": {
            f: float(data.executed[data.family == f].mean()) for f in families
        },
        **{f"best_of_{k}": picks_against_first(scores, data, k) for k in ks},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--critic", type=Path, required=True, help="an execution-critic folder")
    parser.add_argument("--data", type=Path, required=True, help="labelled videos (.npz)")
    parser.add_argument("--ks", default="2,4,8", help="numbers of candidates, e.g. 2,4,8")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    try:
        ks = tuple(int(k) for k in args.ks.split(","))
    except ValueError:
        parser.error(f"--ks {args.ks!r}: not a list of integers")
    if not ks or min(ks) < 1:
        parser.error(f"--ks {args.ks!r}: need integers >= 1")
    t0 = time.perf_counter()
    torch.set_num_threads(2)
    try:
        critic = ExecutionCritic.from_pretrained(args.critic)
        data = load_labelled_videos(args.data)
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    scores = execution_probability(critic, data.videos)
    result = {
        "command": " ".join(["benchmarks/bench_execution_critic.py", *sys.argv[1:]]),
        "critic": str(args.critic),
        "data": str(args.data),
        "summary": summarize(scores, data, ks),
        "wall_s": time.perf_counter() - t0,
    }
    write_json_atomic(args.output, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
