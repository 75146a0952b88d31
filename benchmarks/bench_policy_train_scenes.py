"""Closed-loop success of LeRobot policies on the very scenes their expert demos came from.

Does a policy fit its own demonstrations? Each expert episode the run's trainer picked
(``train_policy.select_expert_episodes`` under the run's ``train_config.json``) is replayed
from its seed: the same layout and task, run through the goal runner's policy mode over
``SimArm`` exactly as ``executor-dreamgen`` runs its splits (``dreamgen.run_episode``).
Success here and failure on ``executor-dreamgen``'s held-out layouts means the loop
executes and the policy does not generalise across layouts; failure here too means it
does not fit its demos (or the loop differs from the data collector's).

    R=outputs/policy_sim
    .venv/bin/python benchmarks/bench_policy_train_scenes.py \\
        --conditions expert_only=$R/fp16/expert_only/pretrained_model,... \\
        --train_config $R/trim_expert_only/train_config.json --n_action_steps 4 \\
        --output checkpoints/policy_sim/report/train_scenes.json

Prints one JSON summary and writes it (atomically) to ``--output``; ``--videos K`` also
writes the executed videos of the first K scenes of each condition to
``<output stem>_videos/``.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch
from bench_policy_offline import read_run_arguments, run_parser

from executor_core.video_io import save_video_mp4
from executor_sim.env import EnvConfig, make_env
from self_distillation.closed_loop import write_bench_result
from self_distillation.dreamgen import DreamGenConfig, run_episode
from self_distillation.stats import paired_difference, success_rate
from self_distillation.task_items import TaskItem
from self_distillation.task_proposal import proposal_from_task_dict
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy
from visuomotor_policy.train_policy import (
    TrainPolicyConfig,
    read_episode_records,
    select_expert_episodes,
)

logger = logging.getLogger("bench_policy_train_scenes")


def training_items(cfg: TrainPolicyConfig, env: Any) -> list[TaskItem]:
    """The trainer's expert episodes as task items: seed, task and first frame."""
    records = {int(r["episode_index"]): r for r in read_episode_records(cfg.expert_root)}
    items = []
    for index in select_expert_episodes(cfg):
        record = records[index]
        env.reset(int(record["seed"]))
        items.append(
            TaskItem(
                item_id=f"train-{index}",
                scene_id=f"sim{int(record['seed']):07d}",
                image_rgb=env.render(),
                proposal=proposal_from_task_dict(record, source="expert_demo"),
                scene=dict(record.get("scene") or {}),
                seed=int(record["seed"]),
            )
        )
    return items


def videos_dir(output: Path) -> Path:
    """Where ``--videos`` go: beside the JSON, ``<output stem>_videos/``."""
    return output.parent / f"{output.stem}_videos"


def paired_against_first(records: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Each later condition minus the first, on the same scenes: a paired 95 % interval."""
    outcomes = {
        name: {r["item_id"]: [r["success"]] for r in records if r["condition"] == name}
        for name in names
    }
    paired = {}
    for other in names[1:]:
        d, low, high = paired_difference(outcomes[other], outcomes[names[0]])
        paired[f"{other} - {names[0]}"] = {"difference": d, "ci95": [low, high]}
    return paired


def per_family(records: list[dict[str, Any]], condition: str) -> dict[str, Any]:
    """Success over all of ``condition``'s episodes and per family, with Wilson intervals."""
    mine = [r for r in records if r["condition"] == condition]
    groups = {"all": mine}
    for family in sorted({r["family"] for r in mine}):
        groups[family] = [r for r in mine if r["family"] == family]
    return {
        name: success_rate(sum(r["success"] for r in group), len(group)).to_dict()
        for name, group in groups.items()
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    parser = run_parser(__doc__.splitlines()[0])
    parser.add_argument("--max_steps", type=int, default=160, help="control steps per goal")
    parser.add_argument("--limit_tolerance_rad", type=float, default=0.2)
    parser.add_argument("--n_action_steps", type=int, default=0, help="0: each policy's own")
    parser.add_argument(
        "--videos", type=int, default=0, help="mp4s of the first K scenes per condition"
    )
    args = parser.parse_args(argv)
    conditions, train_cfg = read_run_arguments(parser, args.conditions, args.train_config)
    try:
        cfg = DreamGenConfig(
            conditions=tuple(f"{k}={v}" for k, v in conditions.items()),
            max_steps=args.max_steps,
            limit_tolerance_rad=args.limit_tolerance_rad,
            n_action_steps=args.n_action_steps,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.videos < 0:
        parser.error(f"--videos must be >= 0, got {args.videos}")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    env = make_env(EnvConfig(image_size_px=cfg.image_size_px))
    records: list[dict[str, Any]] = []
    try:
        items = training_items(train_cfg, env)
        for name, path in conditions.items():
            policy = LeRobotChunkPolicy.from_pretrained(path, cfg.policy_io())
            for k, item in enumerate(items):
                record, frames = run_episode(policy, env, item, cfg)
                records.append({"condition": name, **record})
                if k < args.videos:
                    verdict = "success" if record["success"] else "fail"
                    video = videos_dir(args.output) / f"{name}_{item.item_id}_{verdict}.mp4"
                    save_video_mp4(frames, video, fps=env.cfg.fps_hz)
    finally:
        env.close()
    summary = {
        "rates": {name: per_family(records, name) for name in conditions},
        "paired": paired_against_first(records, list(conditions)),
    }
    fields = {
        "conditions": {k: str(v) for k, v in conditions.items()},
        "train_config": str(args.train_config),
        "expert_root": str(train_cfg.expert_root),
        "max_steps": cfg.max_steps,
        "limit_tolerance_rad": cfg.limit_tolerance_rad,
        "n_action_steps": cfg.n_action_steps,
    }
    script = "benchmarks/bench_policy_train_scenes.py"
    write_bench_result(args.output, script, argv, 1, fields, summary, records, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
