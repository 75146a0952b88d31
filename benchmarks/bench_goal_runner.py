"""Closed-loop success and task time of the stack under goal-runner settings.

The same items, imagined videos (same seeds) and IDM go through the goal runner on the
simulator (``self_distillation.closed_loop.run_stack``) once per variant; a variant is a
retiming profile (``GoalRunnerConfig.retime_profile``: how each chunk's clock is slowed to
the joint limits) and a number of imagined candidates per segment
(``GoalRunnerConfig.num_candidates``; with more than one, ``--critic`` picks the video
tracked, reading only the imagined frames and the prompt, as on the robot). Variant names:
the profile (one candidate) or ``PROFILE+best_of_K``. The scripted expert runs the same
items for the task-time ratio.

Choose on a validation range, report on the benchmark's split:

    # validation (seeds no split of executor-worldtasks uses)
    .venv/bin/python benchmarks/bench_goal_runner.py --first_seed 1400000 \\
        --items 32 --output checkpoints/executor_sim/results/retime_validation.json
    # validation in paraphrases (a model trained on the short prompts can lose them)
    .venv/bin/python benchmarks/bench_goal_runner.py --split novel_phrasing \\
        --first_seed 1450000 --items 48 --output OUT.json
    # report: the benchmark's seen split (executor-worldtasks' seeds)
    .venv/bin/python benchmarks/bench_goal_runner.py --first_seed 1000000 \\
        --items 64 --output checkpoints/executor_sim/results/retime_seen.json
    # best of 4 imagined videos per segment, picked by the execution-aware judge
    .venv/bin/python benchmarks/bench_goal_runner.py --first_seed 1400000 --items 48 \\
        --profiles per_interval --candidates 1,4 --output OUT.json

``--model PATH`` runs another video model of the same condition (e.g. an Executor
distilled another way) and ``--baseline JSON`` adds, per variant, the paired difference
against an earlier output of this benchmark on the same items and seeds:

    .venv/bin/python benchmarks/bench_goal_runner.py --first_seed 1000000 --items 64 \
        --profiles per_interval --model outputs/wt/run_exec/executor_distilled/pipeline \
        --baseline checkpoints/executor_sim/results/retime_seen.json --output OUT.json

``--grasp_gate_mm 0,20`` adds variants with the goal runner's grasp gate
(``executor_core.grasp_gate``: a closing is held open while the gripper frame is higher
than that above the table; ``--grasp_gate_measured``: the measured one too), named
``PROFILE+gate_20mm`` (``_measured``). Each grasp episode records where the jaws closed
and the grasp point's nearest approach with the jaws open (``grasp_miss_mm``).

Prints one JSON summary; writes it, with the per-item records, to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from executor_core.retiming import RETIME_PROFILES
from executor_sim.grasp_probe import GRASP_FAMILIES
from self_distillation.closed_loop import (
    ClosedLoopConfig,
    load_sim_stack,
    run_expert,
    run_stack,
    write_bench_result,
)
from self_distillation.demo_generation import item_seed
from self_distillation.judges.critic import CRITIC_JUDGES, check_critic_judge
from self_distillation.stats import mean_interval, paired_difference, success_rate
from self_distillation.task_items import TaskItem
from self_distillation.worldtasks_splits import SplitSpec, build_split, item_family

logger = logging.getLogger("bench_goal_runner")

MODELS = {
    "executor_distilled": "checkpoints/executor_sim",
    "executor_anchor": "checkpoints/executor_anchor_sim",
    "demonstrator_solution": "checkpoints/demonstrator_sim",
}


@dataclass(frozen=True)
class Variant:
    profile: str
    candidates: int
    gate_mm: float = 0.0  # the grasp gate's height (0: no gate)
    gate_measured: bool = False  # the gate also reads the measured gripper frame

    @property
    def name(self) -> str:
        name = self.profile if self.candidates == 1 else f"{self.profile}+best_of_{self.candidates}"
        if not self.gate_mm:
            return name
        return f"{name}+gate_{self.gate_mm:g}mm" + ("_measured" if self.gate_measured else "")


@dataclass(frozen=True)
class Job:
    condition: str
    variants: tuple[Variant, ...]
    idm: str
    image_size_px: int
    model: str
    critic: str
    critic_path: str = ""


_STATE: dict[str, Any] = {}


def _init(job: Job) -> None:
    torch.set_num_threads(1)
    model, idm, env = load_sim_stack(Path(job.model), Path(job.idm), job.image_size_px)
    _STATE.update(job=job, model=model, idm=idm, env=env)


def _run_item(item: TaskItem) -> dict[str, Any]:
    job: Job = _STATE["job"]
    env = _STATE["env"]
    seed = item_seed(item.item_id, 0)
    expert = run_expert(env, item, ClosedLoopConfig(paraphrase=False))
    row: dict[str, Any] = {
        "item_id": item.item_id,
        "family": item_family(item),
        "expert": {
            "success": expert.success,
            "steps": expert.steps,
            "grasps": expert.grasps,
            "nearest_open": expert.nearest_open,
        },
    }
    for variant in job.variants:
        cfg = ClosedLoopConfig(
            paraphrase=False,
            retime_profile=variant.profile,
            num_candidates=variant.candidates,
            candidate_judge=job.critic,
            critic_path=job.critic_path,
            grasp_gate_max_height_m=variant.gate_mm / 1000.0,
            grasp_gate_measured=variant.gate_measured,
        )
        t0 = time.perf_counter()
        result = run_stack(env, item, job.condition, _STATE["model"], _STATE["idm"], cfg, seed)
        row[variant.name] = {
            "success": result.success,
            "steps": result.steps,
            "replans": result.replans,
            "message": result.message,
            "wall_s": time.perf_counter() - t0,
            "grasps": result.grasps,
            "nearest_open": result.nearest_open,
        }
        if variant.gate_mm:
            row[variant.name]["gate_held_points"] = result.gate_held_points
        if variant.candidates > 1:
            # per segment: the chosen candidate, and how many the critic accepted
            row[variant.name]["chosen"] = result.chosen
            row[variant.name]["accepted"] = result.accepted
    return row


def _first(row: dict[str, Any], variant: str) -> bool:
    return bool(row[variant]["success"]) and row[variant].get("replans", 0) == 0


def _quartiles(values: list[float]) -> dict[str, float]:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return {"median": float(q50), "p25": float(q25), "p75": float(q75)}


def grasp_misses(rows: list[dict[str, Any]], variant: str) -> dict[str, Any]:
    """Where the jaws closed (``executor_sim.grasp_probe``) on the grasp tasks, by outcome,
    in mm from the cube's centre: the first closing's horizontal miss (``first_xy``), and
    the nearest closing's distance (``nearest``, horizontal and height together), with how
    many episodes closed within 10 and 20 mm; and how many never closed the jaws. Where
    recorded, ``approach``: the grasp point's nearest approach with the jaws open (distance,
    and its height and horizontal miss at that moment)."""
    out: dict[str, Any] = {}
    grasping = [r for r in rows if r["family"] in GRASP_FAMILIES and "grasps" in r[variant]]
    for outcome, name in ((True, "solved"), (False, "failed")):
        of = [r for r in grasping if bool(r[variant]["success"]) == outcome]
        if not of:
            continue
        closed = [r[variant]["grasps"] for r in of if r[variant]["grasps"]]
        entry: dict[str, Any] = {"episodes": len(of), "never_closed": len(of) - len(closed)}
        if closed:
            nearest = [min(float(np.hypot(g["xy_mm"], g["z_mm"])) for g in c) for c in closed]
            entry["first_xy"] = _quartiles([c[0]["xy_mm"] for c in closed])
            entry["nearest"] = {
                **_quartiles(nearest),
                "within_10": sum(d <= 10.0 for d in nearest),
                "within_20": sum(d <= 20.0 for d in nearest),
            }
        approaches = [r[variant]["nearest_open"] for r in of if r[variant].get("nearest_open")]
        if approaches:
            distances = [a["distance_mm"] for a in approaches]
            entry["approach"] = {
                "episodes": len(approaches),
                "distance": _quartiles(distances),
                "z": _quartiles([a["z_mm"] for a in approaches]),
                "xy": _quartiles([a["xy_mm"] for a in approaches]),
                "within_10": sum(d <= 10.0 for d in distances),
                "within_20": sum(d <= 20.0 for d in distances),
            }
        out[name] = entry
    return out


def summarize(rows: list[dict[str, Any]], variants: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant in ("expert", *variants):
        ok = [r for r in rows if r[variant]["success"]]
        rate = success_rate(len(ok), len(rows))
        families = sorted({r["family"] for r in rows})
        entry: dict[str, Any] = {
            "n": len(rows),
            "success": rate.rate,
            "ci95": [rate.low, rate.high],
            "per_family": {
                f: f"{sum(r[variant]['success'] for r in rows if r['family'] == f)}/"
                f"{sum(r['family'] == f for r in rows)}"
                for f in families
            },
            # solved by the first imagined segment: what one imagined video executes to
            "first_attempt_success": sum(_first(r, variant) for r in rows) / len(rows),
            "mean_steps_successful": (
                statistics.mean(r[variant]["steps"] for r in ok) if ok else None
            ),
        }
        if variant != "expert":  # this machine's time per goal: imagining, IDM, simulation
            entry["mean_wall_s"] = statistics.mean(r[variant]["wall_s"] for r in rows)
        accepted = [a for r in rows for a in r[variant].get("accepted", [])]
        if accepted:  # segments where the critic accepted at least one candidate
            entry["segments_with_an_accepted_candidate"] = sum(a > 0 for a in accepted) / len(
                accepted
            )
        both = [r for r in ok if r["expert"]["success"]]
        if variant != "expert" and both:
            entry["task_time_vs_expert"] = statistics.mean(
                r[variant]["steps"] / r["expert"]["steps"] for r in both
            )
            first = [r for r in both if r[variant]["replans"] == 0]
            if first:  # solved by the first imagined segment: the pace of one attempt
                entry["task_time_vs_expert_first_attempt"] = statistics.mean(
                    r[variant]["steps"] / r["expert"]["steps"] for r in first
                )
                entry["solved_first_attempt"] = len(first)
        grasps = grasp_misses(rows, variant)
        if grasps:
            entry["grasp_miss_mm"] = grasps
        out[variant] = entry
    for a in variants:
        for b in variants:
            if a < b:
                d, low, high = paired_difference(
                    {r["item_id"]: [r[a]["success"]] for r in rows},
                    {r["item_id"]: [r[b]["success"]] for r in rows},
                )
                out[f"{a} - {b}"] = {"points": 100 * d, "ci95": [100 * low, 100 * high]}
                # the same number of segments on both sides: the motion's own time cost
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
    rows: list[dict[str, Any]], variants: tuple[str, ...], baseline: Path
) -> dict[str, Any]:
    """This run minus ``baseline`` (same items and seeds), per variant both have."""
    earlier = json.loads(baseline.read_text())
    by_id = {r["item_id"]: r for r in earlier["records"]}
    if sorted(by_id) != sorted(r["item_id"] for r in rows):
        raise ValueError(f"{baseline} holds other items than this run")
    out: dict[str, Any] = {"baseline": str(baseline), "baseline_model": earlier.get("model")}
    for variant in variants:
        if variant not in earlier["records"][0]:
            continue
        d, low, high = paired_difference(
            {r["item_id"]: [r[variant]["success"]] for r in rows},
            {i: [b[variant]["success"]] for i, b in by_id.items()},
        )
        out[variant] = {"points": 100 * d, "ci95": [100 * low, 100 * high]}
        d, low, high = paired_difference(
            {r["item_id"]: [_first(r, variant)] for r in rows},
            {i: [_first(b, variant)] for i, b in by_id.items()},
        )
        out[f"{variant}, first attempt"] = {"points": 100 * d, "ci95": [100 * low, 100 * high]}
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="seen")
    parser.add_argument("--first_seed", type=int, default=1_400_000)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--condition", default="executor_distilled", choices=sorted(MODELS))
    parser.add_argument("--profiles", default=",".join(RETIME_PROFILES))
    parser.add_argument("--candidates", default="1", help="imagined videos per segment, e.g. 1,4")
    parser.add_argument("--critic", default="execution_aware", choices=CRITIC_JUDGES)
    parser.add_argument(
        "--grasp_gate_mm",
        default="0",
        help="grasp-gate heights, e.g. 0,30: jaws close only with the gripper frame at most "
        "this many mm above the table (0: no gate)",
    )
    parser.add_argument(
        "--grasp_gate_measured",
        action="store_true",
        help="the gates also hold while the measured gripper frame is above their height",
    )
    parser.add_argument("--critic_path", default="", help="the execution critic (--critic learned)")
    parser.add_argument("--idm", default="checkpoints/idm_sim")
    parser.add_argument("--model", default="", help="video model folder (default: the condition's)")
    parser.add_argument("--baseline", type=Path, help="an earlier output on the same items")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, required=True)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    profiles = tuple(p for p in args.profiles.split(",") if p)
    unknown = sorted(set(profiles) - set(RETIME_PROFILES))
    if unknown or not profiles:
        parser.error(f"--profiles {args.profiles!r}: unknown {unknown}; known {RETIME_PROFILES}")
    try:
        counts = tuple(int(k) for k in args.candidates.split(",") if k)
    except ValueError:
        parser.error(f"--candidates {args.candidates!r}: not a list of integers")
    if not counts or min(counts) < 1:
        parser.error(f"--candidates {args.candidates!r}: need integers >= 1")
    try:
        gates = tuple(float(h) for h in args.grasp_gate_mm.split(",") if h)
    except ValueError:
        parser.error(f"--grasp_gate_mm {args.grasp_gate_mm!r}: not a list of numbers")
    if not gates or not all(np.isfinite(h) and h >= 0 for h in gates):
        parser.error(f"--grasp_gate_mm {args.grasp_gate_mm!r}: need heights >= 0 (0: no gate)")
    try:
        check_critic_judge(args.critic, args.critic_path)
    except ValueError as exc:
        parser.error(str(exc))
    if args.workers < 1 or args.items < 1:
        parser.error(f"need --workers >= 1 and --items >= 1, got {args.workers}, {args.items}")
    variants = tuple(
        Variant(p, k, h, args.grasp_gate_measured) for p in profiles for k in counts for h in gates
    )
    names = tuple(v.name for v in variants)
    t0 = time.perf_counter()
    items = build_split(SplitSpec(args.split, args.items, args.first_seed))
    model = args.model or MODELS[args.condition]
    job = Job(args.condition, variants, args.idm, 64, model, args.critic, args.critic_path)
    # a worker that cannot start breaks this pool (multiprocessing.Pool restarts it forever)
    context = mp.get_context("spawn")
    with ProcessPoolExecutor(args.workers, context, _init, (job,)) as pool:
        rows = list(pool.map(_run_item, items))
    summary = summarize(rows, names)
    if args.baseline is not None:
        summary["vs_baseline"] = against_baseline(rows, names, args.baseline)
    fields = {
        "split": args.split,
        "first_seed": args.first_seed,
        "condition": args.condition,
        "model": job.model,
        "critic": args.critic if max(counts) > 1 else None,
        "critic_path": args.critic_path or None,
    }
    write_bench_result(
        args.output,
        "benchmarks/bench_goal_runner.py",
        argv,
        args.workers,
        fields,
        summary,
        rows,
        t0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
