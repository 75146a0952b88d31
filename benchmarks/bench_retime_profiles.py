"""Closed-loop success and task time of the stack under each retiming profile.

The same items, imagined videos (same seeds) and IDM go through the goal runner on the
simulator (``self_distillation.closed_loop.run_stack``) once per profile of
``GoalRunnerConfig.retime_profile``; only how each chunk's clock is slowed to the joint
limits differs. The scripted expert runs the same items for the task-time ratio.

Choose on a validation range, report on the benchmark's split:

    # validation (seeds no split of executor-worldtasks uses)
    .venv/bin/python benchmarks/bench_retime_profiles.py --first_seed 1400000 \\
        --items 32 --output checkpoints/executor_sim/results/retime_validation.json
    # report: the benchmark's seen split (executor-worldtasks' seeds)
    .venv/bin/python benchmarks/bench_retime_profiles.py --first_seed 1000000 \\
        --items 64 --output checkpoints/executor_sim/results/retime_seen.json

``--model PATH`` runs another video model of the same condition (e.g. an Executor
distilled another way) and ``--baseline JSON`` adds, per profile, the paired difference
against an earlier output of this benchmark on the same items and seeds:

    .venv/bin/python benchmarks/bench_retime_profiles.py --first_seed 1000000 --items 64 \
        --profiles per_interval --model outputs/wt/run_exec/executor_distilled/pipeline \
        --baseline checkpoints/executor_sim/results/retime_seen.json --output OUT.json

Prints one JSON summary; writes it, with the per-item records, to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from executor_core.atomic_io import write_json_atomic
from executor_core.retiming import RETIME_PROFILES
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.closed_loop import ClosedLoopConfig, make_env, run_expert, run_stack
from self_distillation.demo_generation import item_seed
from self_distillation.stats import mean_interval, paired_difference, success_rate
from self_distillation.task_items import TaskItem
from self_distillation.video_models import load_video_pipeline
from self_distillation.worldtasks_splits import SplitSpec, build_split, item_family
from video_models.world_model import VideoWorldModel

logger = logging.getLogger("bench_retime_profiles")
MODELS = {
    "executor_distilled": "checkpoints/executor_sim",
    "demonstrator_solution": "checkpoints/demonstrator_sim",
}


@dataclass(frozen=True)
class Job:
    condition: str
    profiles: tuple[str, ...]
    idm: str
    image_size_px: int
    model: str


_STATE: dict[str, Any] = {}


def _init(job: Job) -> None:
    torch.set_num_threads(1)
    pipe = load_video_pipeline(Path(job.model), "sim", "cpu")
    _STATE.update(
        job=job,
        model=VideoWorldModel(pipe),
        idm=InverseDynamicsPolicy.from_pretrained(Path(job.idm), device="cpu"),
        env=make_env(job.image_size_px),
    )


def _run_item(item: TaskItem) -> dict[str, Any]:
    job: Job = _STATE["job"]
    env = _STATE["env"]
    seed = item_seed(item.item_id, 0)
    expert = run_expert(env, item, ClosedLoopConfig(paraphrase=False))
    row: dict[str, Any] = {
        "item_id": item.item_id,
        "family": item_family(item),
        "expert": {"success": expert.success, "steps": expert.steps},
    }
    for profile in job.profiles:
        cfg = ClosedLoopConfig(paraphrase=False, retime_profile=profile)
        result = run_stack(env, item, job.condition, _STATE["model"], _STATE["idm"], cfg, seed)
        row[profile] = {
            "success": result.success,
            "steps": result.steps,
            "replans": result.replans,
            "message": result.message,
        }
    return row


def _first(row: dict[str, Any], profile: str) -> bool:
    return bool(row[profile]["success"]) and row[profile].get("replans", 0) == 0


def summarize(rows: list[dict[str, Any]], profiles: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for profile in ("expert", *profiles):
        ok = [r for r in rows if r[profile]["success"]]
        rate = success_rate(len(ok), len(rows))
        families = sorted({r["family"] for r in rows})
        entry: dict[str, Any] = {
            "n": len(rows),
            "success": rate.rate,
            "ci95": [rate.low, rate.high],
            "per_family": {
                f: f"{sum(r[profile]['success'] for r in rows if r['family'] == f)}/"
                f"{sum(r['family'] == f for r in rows)}"
                for f in families
            },
            # solved by the first imagined segment: what one imagined video executes to
            "first_attempt_success": sum(_first(r, profile) for r in rows) / len(rows),
            "mean_steps_successful": (
                statistics.mean(r[profile]["steps"] for r in ok) if ok else None
            ),
        }
        both = [r for r in ok if r["expert"]["success"]]
        if profile != "expert" and both:
            entry["task_time_vs_expert"] = statistics.mean(
                r[profile]["steps"] / r["expert"]["steps"] for r in both
            )
            first = [r for r in both if r[profile]["replans"] == 0]
            if first:  # solved by the first imagined segment: the pace of one attempt
                entry["task_time_vs_expert_first_attempt"] = statistics.mean(
                    r[profile]["steps"] / r["expert"]["steps"] for r in first
                )
                entry["solved_first_attempt"] = len(first)
        out[profile] = entry
    for a in profiles:
        for b in profiles:
            if a < b:
                d, low, high = paired_difference(
                    {r["item_id"]: [r[a]["success"]] for r in rows},
                    {r["item_id"]: [r[b]["success"]] for r in rows},
                )
                out[f"{a} - {b}"] = {"points": 100 * d, "ci95": [100 * low, 100 * high]}
                # the same number of segments on both sides: the retiming's own time cost
                same = [
                    r[a]["steps"] / r[b]["steps"]
                    for r in rows
                    if r[a]["success"] and r[b]["success"] and r[a]["replans"] == r[b]["replans"]
                ]
                if same:
                    ratio, low, high = mean_interval(same)
                    out[f"steps {a} / {b}, items both solve in as many segments"] = {
                        "n": len(same),
                        "ratio": ratio,
                        "ci95": [low, high],
                    }
    return out


def against_baseline(
    rows: list[dict[str, Any]], profiles: tuple[str, ...], baseline: Path
) -> dict[str, Any]:
    """This run minus ``baseline`` (same items and seeds), per profile both have."""
    earlier = json.loads(baseline.read_text())
    by_id = {r["item_id"]: r for r in earlier["records"]}
    if sorted(by_id) != sorted(r["item_id"] for r in rows):
        raise ValueError(f"{baseline} holds other items than this run")
    out: dict[str, Any] = {"baseline": str(baseline), "baseline_model": earlier.get("model")}
    for profile in profiles:
        if profile not in earlier["records"][0]:
            continue
        d, low, high = paired_difference(
            {r["item_id"]: [r[profile]["success"]] for r in rows},
            {i: [b[profile]["success"]] for i, b in by_id.items()},
        )
        out[profile] = {"points": 100 * d, "ci95": [100 * low, 100 * high]}
        d, low, high = paired_difference(
            {r["item_id"]: [_first(r, profile)] for r in rows},
            {i: [_first(b, profile)] for i, b in by_id.items()},
        )
        out[f"{profile}, first attempt"] = {"points": 100 * d, "ci95": [100 * low, 100 * high]}
    return out


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="seen")
    parser.add_argument("--first_seed", type=int, default=1_400_000)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--condition", default="executor_distilled", choices=sorted(MODELS))
    parser.add_argument("--profiles", default=",".join(RETIME_PROFILES))
    parser.add_argument("--idm", default="checkpoints/idm_sim")
    parser.add_argument("--model", default="", help="video model folder (default: the condition's)")
    parser.add_argument("--baseline", type=Path, help="an earlier output on the same items")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    profiles = tuple(p for p in args.profiles.split(",") if p)
    unknown = sorted(set(profiles) - set(RETIME_PROFILES))
    if unknown or not profiles:
        parser.error(f"--profiles {args.profiles!r}: unknown {unknown}; known {RETIME_PROFILES}")
    if args.workers < 1 or args.items < 1:
        parser.error(f"need --workers >= 1 and --items >= 1, got {args.workers}, {args.items}")
    t0 = time.perf_counter()
    items = build_split(SplitSpec(args.split, args.items, args.first_seed))
    job = Job(args.condition, profiles, args.idm, 64, args.model or MODELS[args.condition])
    # a worker that cannot start breaks this pool (multiprocessing.Pool restarts it forever)
    context = mp.get_context("spawn")
    with ProcessPoolExecutor(args.workers, context, _init, (job,)) as pool:
        rows = list(pool.map(_run_item, items))
    summary = summarize(rows, profiles)
    if args.baseline is not None:
        summary["vs_baseline"] = against_baseline(rows, profiles, args.baseline)
    command = "benchmarks/bench_retime_profiles.py " + " ".join(sys.argv[1:])
    result = {
        "command": command,
        "hardware": f"{os.cpu_count()}-core CPU, {args.workers} worker processes",
        "split": args.split,
        "first_seed": args.first_seed,
        "condition": args.condition,
        "model": job.model,
        "wall_s": time.perf_counter() - t0,
        "summary": summary,
        "records": rows,
    }
    write_json_atomic(args.output, result)
    print(json.dumps({"command": command, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
