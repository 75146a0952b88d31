"""How much GRPO's reward can tell apart a model's own samples: executed vs colour judge.

GRPO normalises each reward within its group of samples of one item, so a group whose
samples all succeed, or all fail, teaches nothing through its success. For each model this
draws groups exactly as the trainer does (``grpo_trainer.sample_groups``: the model's SDE
sampling, one initial noise per group, the same seeds), judges every video with the
executed judge (the video run in the simulator by the IDM) and the colour judge
(programmatic), and prints per judge: the success rate, the share of groups with at least
one success and the share of groups whose successes differ (mixed groups: the ones whose
success moves the advantage). ``--trainer_steps N`` draws the items (and sampling seeds) of
the trainer's first N steps instead of the folder's first items, to set beside a run's log.

    .venv/bin/python benchmarks/bench_grpo_signal.py \\
        --models distilled=checkpoints/executor_sim,anchor=checkpoints/executor_anchor_sim \\
        --items outputs/wt/pack512/proposals --num_items 16 --group_size 16 \\
        --output checkpoints/executor_sim/results/rl_gpu2/grpo_signal.json

Writes one JSON (atomically) and prints it. Bad input exits 2 and names the value.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from executor_core.atomic_io import write_json_atomic
from executor_core.config_cli import OneLineArgumentParser, parse_named_paths
from executor_core.frame_stats import grain_excess
from self_distillation.executed_success import ExecutedSuccessConfig
from self_distillation.grpo_trainer import PRESETS as GRPO_PRESETS
from self_distillation.grpo_trainer import (
    group_success_shares,
    load_pipeline,
    pick_items,
    sample_groups,
)
from self_distillation.judges.executed import ExecutedJudgeConfig
from self_distillation.judging import JudgeConfig, episode_for_item, judge_videos, make_judge
from self_distillation.stats import success_rate
from self_distillation.task_items import TaskItem, items_of_families, load_items
from self_distillation.video_models import resolve_device


def group_stats(success: np.ndarray) -> dict[str, Any]:
    """``success``: (groups, group_size) bools -> rates, with the success rate's interval."""
    rate = success_rate(int(success.sum()), success.size)
    group_ids = torch.arange(success.shape[0]).repeat_interleave(success.shape[1])
    return {
        "videos": int(success.size),
        "success": rate.rate,
        "success_ci95": [rate.low, rate.high],
        **group_success_shares(success.ravel().tolist(), group_ids),
    }


def draws(args: Any) -> list[tuple[int, list[TaskItem]]]:
    """(step, items) per sampling call: the first ``num_items`` items in order,
    ``batch_items`` at a time; or, with ``trainer_steps``, the items GRPO's steps 1..N draw
    from the whole folder (``pick_items`` with ``batch_items`` prompts per step)."""
    if args.trainer_steps:
        items = items_of_families(load_items(args.items), args.families)
        return [
            (step, [items[i] for i in pick_items(len(items), step, args.batch_items, args.seed)])
            for step in range(args.trainer_steps)
        ]
    items = items_of_families(load_items(args.items), args.families)[: args.num_items]
    if len(items) < args.num_items:
        raise ValueError(f"--items {str(args.items)!r} holds {len(items)} < {args.num_items} items")
    starts = range(0, len(items), args.batch_items)
    return [(k, items[start : start + args.batch_items]) for k, start in enumerate(starts)]


def measure(path: Path, args: Any, judges: dict[str, Any]) -> dict[str, Any]:
    cfg = replace(
        GRPO_PRESETS["sim"],
        group_size=args.group_size,
        eta=args.eta,
        num_inference_steps=args.steps,
        seed=args.seed,
    )
    pipe = load_pipeline(cfg, path)
    success = {name: [] for name in judges}
    grain: list[float] = []
    t0 = time.perf_counter()
    for step, batch in draws(args):
        roll = sample_groups(pipe, batch, cfg, step=step)
        grain.extend(grain_excess(video) for video in roll.frames)
        episodes = [episode_for_item(batch[int(g)]) for g in roll.group_ids]
        for name, judge in judges.items():
            verdicts = judge_videos(judge, list(roll.frames), episodes)
            ok = np.array([v.success for v in verdicts], dtype=bool)
            success[name].append(ok.reshape(len(batch), args.group_size))
    return {
        "model": str(path),
        "wall_s": time.perf_counter() - t0,
        "grain_excess": float(np.mean(grain)),  # the grain the samples add over frame 0
        **{name: group_stats(np.concatenate(rows)) for name, rows in success.items()},
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True, help="name=pipeline folder,...")
    parser.add_argument("--items", type=Path, required=True, help="a task-item folder")
    parser.add_argument("--num_items", type=int, default=16)
    parser.add_argument("--group_size", type=int, default=16)
    parser.add_argument("--batch_items", type=int, default=2, help="items sampled together")
    parser.add_argument(
        "--trainer_steps",
        type=int,
        default=0,
        help="> 0: the items GRPO's first N steps draw (batch_items per step), not the first ones",
    )
    parser.add_argument("--families", default="", help="task families kept (default: all)")
    parser.add_argument("--eta", type=float, default=GRPO_PRESETS["sim"].eta)
    parser.add_argument("--steps", type=int, default=GRPO_PRESETS["sim"].num_inference_steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="executed judge's processes")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    args.families = tuple(f for f in args.families.split(",") if f)
    for name in ("num_items", "group_size", "batch_items", "steps", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.trainer_steps < 0:
        parser.error(f"--trainer_steps must be >= 0, got {args.trainer_steps}")
    if not 0.0 <= args.eta <= 1.0:
        parser.error(f"--eta must be in [0, 1], got {args.eta}")
    try:
        models = parse_named_paths(args.models, "--models")
        for name, path in models.items():
            if not (path / "model_index.json").is_file():
                raise ValueError(f"--models {name}={str(path)!r} is not a pipeline folder")
        if not (args.items / "items.jsonl").is_file():
            raise ValueError(f"--items {str(args.items)!r} is not a task-item folder")
    except ValueError as exc:
        parser.error(str(exc))
    executed = ExecutedJudgeConfig(ExecutedSuccessConfig(workers=args.workers))
    judges = {
        "executed": make_judge(JudgeConfig(kind="executed", executed=executed)),
        "programmatic": make_judge(JudgeConfig(kind="programmatic")),
    }
    try:
        results = {name: measure(path, args, judges) for name, path in models.items()}
    except ValueError as exc:
        parser.error(str(exc))
    out = {
        "command": " ".join(["benchmarks/bench_grpo_signal.py", *argv]),
        "hardware": f"{resolve_device('auto')}, {torch.get_num_threads()} torch threads",
        **results,
    }
    write_json_atomic(args.output, out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
