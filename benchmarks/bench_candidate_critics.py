"""Which critic picks an imagined video the arm can do: first segments, every candidate executed.

For each item, the Executor imagines ``--candidates`` videos from the item's first camera
frame with the seeds the goal runner gives a first segment's candidates (``run_stack``'s
``seed * 101 + j * CANDIDATE_SEED_STRIDE``); each is executed in the simulator from that
state (``execute_videos``: the IDM through the goal runner, one segment, no replanning)
and read by every critic that sees only the frames and the prompt. Per critic and number of
candidates K, the figure is how often the video it picks (``best_candidate`` over the first
K) executes, against candidate 0 (one imagining) and the oracle (any of the K executes:
what a perfect critic could do). A critic's rule is chosen on a validation range and
reported on the benchmark's split:

    .venv/bin/python benchmarks/bench_candidate_critics.py --first_seed 1400000 --items 48 \\
        --output checkpoints/executor_sim/results/candidates/critics_validation.json

Prints one JSON summary; writes it, with every candidate's record, to ``--output``.
``--item_folder`` reads training items (a task-item folder, seeds below the benchmark's)
instead of a split; ``--save_videos`` also writes every candidate's frames with its
executed label, the training data of the learned execution critic (``execution_critic``):

    .venv/bin/python benchmarks/bench_candidate_critics.py --item_folder \
        outputs/wt/pack512/proposals --items 256 --model checkpoints/executor_anchor_sim \
        --output outputs/critic_data/train.json --save_videos outputs/critic_data/train.npz
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from execution_critic.train_critic import rank_auc
from executor_core.atomic_io import write_npz_atomic
from executor_core.goal_runner import CANDIDATE_SEED_STRIDE
from executor_core.policy import Critique, best_candidate
from self_distillation.closed_loop import load_sim_stack, task_for_item, write_bench_result
from self_distillation.demo_generation import item_seed
from self_distillation.executed_success import ExecutedSuccessConfig, SimStart, execute_videos
from self_distillation.judges.execution_aware import ExecutionAwareJudge
from self_distillation.judges.programmatic import ProgrammaticJudge
from self_distillation.stats import paired_difference, success_rate
from self_distillation.task_items import TaskItem, items_of_families, load_items
from self_distillation.worldtasks_splits import SplitSpec, build_split, item_family

logger = logging.getLogger("bench_candidate_critics")

# critic name -> the Critique it makes of one candidate's judge readings
CRITICS: dict[str, Callable[[dict[str, Any]], Critique]] = {
    "execution_aware": lambda c: Critique(c["ea_success"], c["ea_score"]),
    "programmatic": lambda c: Critique(c["prog_success"], c["prog_score"]),
    "task_score": lambda c: Critique(False, c["ea_task"]),
    "agent_score": lambda c: Critique(False, c["ea_agent"]),
    "consistency_score": lambda c: Critique(False, c["ea_consistency"]),
}


@dataclass(frozen=True)
class Job:
    model: str
    idm: str
    candidates: int


_STATE: dict[str, Any] = {}


def _init(job: Job) -> None:
    torch.set_num_threads(1)
    model, idm, env = load_sim_stack(Path(job.model), Path(job.idm))
    _STATE.update(
        job=job, model=model, idm=idm, env=env, ea=ExecutionAwareJudge(), prog=ProgrammaticJudge()
    )


def _run_item(item: TaskItem) -> dict[str, Any]:
    job: Job = _STATE["job"]
    env = _STATE["env"]
    task_for_item(env, item)
    image = env.observation()["image"]
    base = item_seed(item.item_id, 0) * 101  # run_stack's first segment
    videos = [
        _STATE["model"](image, item.prompt, base + j * CANDIDATE_SEED_STRIDE)
        for j in range(job.candidates)
    ]
    starts = [SimStart.from_item(item)] * len(videos)
    batch = execute_videos(videos, starts, ExecutedSuccessConfig(workers=1), idm=_STATE["idm"])
    episode = {"prompt": item.prompt}  # what a critic reads at run time: the prompt alone
    candidates = []
    for video, executed in zip(videos, batch.results, strict=True):
        ea = _STATE["ea"].judge(video, episode)
        prog = _STATE["prog"].judge(video, episode)
        candidates.append(
            {
                "executed": bool(executed.success),
                "steps": int(executed.steps),
                "ea_success": bool(ea.success),
                "ea_score": float(ea.score),
                "ea_task": float(ea.task),
                "ea_agent": float(ea.agent),
                "ea_consistency": float(ea.consistency),
                "prog_success": bool(prog.success),
                "prog_score": float(prog.score),
            }
        )
    return {
        "item_id": item.item_id,
        "family": item_family(item),
        "prompt": item.prompt,
        "candidates": candidates,
        "videos": np.stack(videos),
    }


def save_videos(path: Path, rows: list[dict[str, Any]]) -> None:
    """Every candidate's frames (N, T, H, W, 3) uint8 with its executed label and item."""
    n = len(rows[0]["candidates"])
    write_npz_atomic(
        path,
        {
            "videos": np.concatenate([r["videos"] for r in rows]),
            "executed": np.array([c["executed"] for r in rows for c in r["candidates"]]),
            "item_index": np.repeat(np.arange(len(rows)), n),
            "candidate": np.tile(np.arange(n), len(rows)),
            "item_id": np.array([r["item_id"] for r in rows for _ in range(n)]),
            "family": np.array([r["family"] for r in rows for _ in range(n)]),
            "prompt": np.array([r["prompt"] for r in rows for _ in range(n)]),
        },
    )


def _rate(hits: dict[str, bool]) -> dict[str, Any]:
    rate = success_rate(sum(hits.values()), len(hits))
    return {"executed": rate.rate, "ci95": [rate.low, rate.high]}


def summarize(rows: list[dict[str, Any]], max_k: int) -> dict[str, Any]:
    flat = [c for r in rows for c in r["candidates"]]
    labels = [c["executed"] for c in flat]
    out: dict[str, Any] = {
        "items": len(rows),
        "candidates": len(flat),
        "execution_rate_per_candidate": float(np.mean(labels)),
        "auc_executed": {
            name: rank_auc(np.array([critic(c).score for c in flat]), np.array(labels))
            for name, critic in CRITICS.items()
        },
        "precision_of_accepted": {},
    }
    for name in ("execution_aware", "programmatic"):
        accepted = [c["executed"] for c in flat if CRITICS[name](c).accepted]
        out["precision_of_accepted"][name] = {
            "accepted": len(accepted),
            "of": len(flat),
            "executed": float(np.mean(accepted)) if accepted else None,
        }
    first = {r["item_id"]: r["candidates"][0]["executed"] for r in rows}
    ks = [k for k in (2, 4, 8, 16) if k <= max_k] or [max_k]
    by_k: dict[str, Any] = {}
    for k in ks:
        entry: dict[str, Any] = {"candidate_0": _rate(first)}
        oracle = {r["item_id"]: any(c["executed"] for c in r["candidates"][:k]) for r in rows}
        entry["oracle"] = _rate(oracle)
        for name, critic in CRITICS.items():
            picked = {
                r["item_id"]: r["candidates"][
                    best_candidate([critic(c) for c in r["candidates"][:k]])
                ]["executed"]
                for r in rows
            }
            d, low, high = paired_difference(
                {i: [v] for i, v in picked.items()}, {i: [v] for i, v in first.items()}
            )
            entry[name] = {**_rate(picked), "minus_candidate_0": [100 * d, 100 * low, 100 * high]}
        by_k[f"best_of_{k}"] = entry
    out["picked"] = by_k
    families = sorted({r["family"] for r in rows})
    out["execution_rate_per_family"] = {
        f: float(
            np.mean([c["executed"] for r in rows if r["family"] == f for c in r["candidates"]])
        )
        for f in families
    }
    return out


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="seen")
    parser.add_argument(
        "--item_folder", type=Path, default=None, help="task items instead of --split's"
    )
    parser.add_argument("--save_videos", type=Path, default=None, help="an .npz to write")
    parser.add_argument(
        "--families", default="", help="with --item_folder: only these (comma-separated)"
    )
    parser.add_argument("--first_seed", type=int, default=1_400_000)
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--model", default="checkpoints/executor_sim")
    parser.add_argument("--idm", default="checkpoints/idm_sim")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.candidates < 2 or args.items < 1 or args.workers < 1:
        parser.error(
            f"need --candidates >= 2, --items >= 1, --workers >= 1; got {args.candidates}, "
            f"{args.items}, {args.workers}"
        )
    t0 = time.perf_counter()
    if args.save_videos is not None and args.save_videos.suffix != ".npz":
        parser.error(f"--save_videos must end in .npz, got {str(args.save_videos)!r}")
    if args.item_folder is None:
        items = build_split(SplitSpec(args.split, args.items, args.first_seed))
    else:
        items = load_items(args.item_folder)
        if args.families:
            items = items_of_families(items, args.families.split(","))
        items = items[: args.items]
        if len(items) < args.items:
            parser.error(f"--item_folder holds {len(items)} items, fewer than --items {args.items}")
    job = Job(args.model, args.idm, args.candidates)
    with ProcessPoolExecutor(args.workers, mp.get_context("spawn"), _init, (job,)) as pool:
        rows = list(pool.map(_run_item, items))
    if args.save_videos is not None:
        save_videos(args.save_videos, rows)
    for row in rows:
        del row["videos"]
    summary = summarize(rows, args.candidates)
    split = args.split if args.item_folder is None else str(args.item_folder)
    fields = {"split": split, "first_seed": args.first_seed, "model": args.model}
    write_bench_result(
        args.output,
        "benchmarks/bench_candidate_critics.py",
        sys.argv[1:],
        args.workers,
        fields,
        summary,
        rows,
        t0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
