"""Does an imagined video's executed outcome survive an invisible change of its pixels?

Takes labelled videos (``bench_candidate_critics.py --save_videos``: imagined first segments,
each executed in the simulator from its item's start) and executes a balanced sample of them
again: once unchanged (the simulator and the IDM are deterministic, so the outcome must
repeat) and ``--repeats`` times with i.i.d. Gaussian noise of ``--noise_std`` grey levels
added to every frame (rounded, kept in 0-255). If outcomes flip under noise no one can see,
no critic that reads the frames can tell which candidate the arm will execute, and selection
among candidates is a lottery:

    .venv/bin/python benchmarks/bench_execution_stability.py \\
        --data outputs/critic_data/train.npz --item_folder outputs/wt/pack512/proposals \\
        --videos 120 --repeats 2 --noise_std 2 \\
        --output checkpoints/executor_sim/results/execution_critic/stability_train.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from execution_critic.processing_critic import load_labelled_videos
from self_distillation.closed_loop import write_bench_result
from self_distillation.executed_success import ExecutedSuccessConfig, execute_videos, video_starts
from self_distillation.task_items import TaskItem, load_items
from self_distillation.worldtasks_splits import SplitSpec, build_split


def balanced_sample(executed: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Up to ``count`` // 2 executing and as many failing video indices, sorted."""
    rng = np.random.default_rng(seed)
    half = count // 2
    pos, neg = np.flatnonzero(executed), np.flatnonzero(~executed)
    chosen = [rng.choice(rows, min(half, len(rows)), replace=False) for rows in (pos, neg)]
    return np.sort(np.concatenate(chosen))


def perturbed(video: np.ndarray, noise_std: float, rng: np.random.Generator) -> np.ndarray:
    """``video`` + rounded Gaussian noise, held in the uint8 range (a perturbation model)."""
    noise = np.rint(rng.normal(0.0, noise_std, video.shape))
    return np.clip(video.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def summarize(original: np.ndarray, again: np.ndarray, noisy: np.ndarray, family: np.ndarray):
    """``original`` (N,), ``again`` (N,) and ``noisy`` (N, R) outcomes -> the figures."""

    def rates(rows: np.ndarray) -> dict[str, Any]:
        pos, neg = rows & original, rows & ~original
        return {
            "videos": int(rows.sum()),
            "executing": int(pos.sum()),
            "still_executes_under_noise": float(noisy[pos].mean()) if pos.any() else None,
            "failing_executes_under_noise": float(noisy[neg].mean()) if neg.any() else None,
            "flip_rate": float((noisy[rows] != original[rows, None]).mean()),
        }

    return {
        "repeats_identically_without_noise": float((again == original).mean()),
        **rates(np.ones_like(original)),
        "per_family": {f: rates(family == f) for f in sorted(set(family.tolist()))},
    }


def _items(args: argparse.Namespace) -> list[TaskItem]:
    if args.item_folder is not None:
        return load_items(args.item_folder)
    return build_split(SplitSpec(args.split, args.split_items, args.first_seed))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="labelled videos (.npz)")
    parser.add_argument("--item_folder", type=Path, default=None, help="the videos' items")
    parser.add_argument("--split", default="seen", help="or the videos' split")
    parser.add_argument("--first_seed", type=int, default=1_400_000)
    parser.add_argument("--split_items", type=int, default=48)
    parser.add_argument("--videos", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--noise_std", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--idm", type=Path, default=Path("checkpoints/idm_sim"))
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.videos < 2 or args.repeats < 1 or not args.noise_std > 0 or args.workers < 1:
        parser.error(
            f"need --videos >= 2, --repeats >= 1, --noise_std > 0, --workers >= 1; got "
            f"{args.videos}, {args.repeats}, {args.noise_std}, {args.workers}"
        )
    t0 = time.perf_counter()
    try:
        data = load_labelled_videos(args.data)
        video_start = video_starts(data.item_id, _items(args))
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    chosen = balanced_sample(data.executed, args.videos, args.seed)
    rng = np.random.default_rng(args.seed)
    videos = [data.videos[i] for i in chosen]
    jobs = list(videos)
    for _ in range(args.repeats):
        jobs += [perturbed(v, args.noise_std, rng) for v in videos]
    starts = [video_start[i] for i in chosen] * (args.repeats + 1)
    cfg = ExecutedSuccessConfig(idm_path=args.idm, workers=args.workers)
    outcomes = np.array([r.success for r in execute_videos(jobs, starts, cfg).results])
    n = len(chosen)
    again, noisy = outcomes[:n], outcomes[n:].reshape(args.repeats, n).T
    summary = summarize(data.executed[chosen], again, noisy, data.family[chosen])
    records = [
        {"video": int(i), "executed": bool(data.executed[i]), "again": bool(a), "noisy": r}
        for i, a, r in zip(chosen, again, noisy.tolist(), strict=True)
    ]
    fields = {"data": str(args.data), "noise_std": args.noise_std}
    script = "benchmarks/bench_execution_stability.py"
    argv = sys.argv[1:]
    write_bench_result(args.output, script, argv, args.workers, fields, summary, records, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
