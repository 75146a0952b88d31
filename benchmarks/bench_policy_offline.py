"""Offline action error of LeRobot policies on expert episodes they did not train on.

For every ``--stride``-th frame of every held-out expert episode, each policy predicts its
chunk from that frame, the joint state and the prompt (``LeRobotChunkPolicy.next_chunk``,
as in the goal runner, a fresh inference per frame), and the mean absolute error of its
first ``n_action_steps`` actions against the expert's recorded actions is taken, per joint,
in rad. The held-out episodes are those of the run's expert dataset that its trainer's
selection (``train_policy.select_expert_episodes`` under the run's ``train_config.json``,
``--train_config``) left out, successful ones only when the run took only those, split into
the training compositions and the held-out ones (``executor_sim.NOVEL_COMPOSITIONS``, the
"novel behaviours"). All policies compared must have trained on the same expert episodes.

Closed-loop success (``executor-dreamgen``) is the headline; this says how far each policy
is from the expert where closed loop cannot tell two failing policies apart.

    R=outputs/policy_sim
    .venv/bin/python benchmarks/bench_policy_offline.py \\
        --conditions expert_only=$R/expert_only/pretrained_model,$R/expert_plus_neural/... \\
        --train_config $R/expert_only/train_config.json \\
        --output checkpoints/policy_sim/report/offline_l1.json

(each entry is ``name=folder``; the policy README gives the full command).

Prints one JSON summary and writes it (atomically) to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from executor_core.config_cli import config_from_dict, parse_named_paths
from executor_core.types import Observation
from executor_sim.tasks import is_novel_composition
from self_distillation.closed_loop import write_bench_result
from visuomotor_policy.configuration_policy import SIM_IMAGE_KEY, SO101_JOINTS, STATE_KEY
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy
from visuomotor_policy.train_policy import (
    TrainPolicyConfig,
    open_dataset,
    read_episode_records,
    select_expert_episodes,
)

logger = logging.getLogger("bench_policy_offline")


def run_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the arguments every per-run policy benchmark takes: the policies
    (``--conditions``), the run's ``--train_config`` and ``--output``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--conditions", required=True, help="name=pretrained_model_dir,...")
    parser.add_argument(
        "--train_config", type=Path, required=True, help="a run's train_config.json"
    )
    parser.add_argument("--output", type=Path, required=True)
    return parser


def read_run_arguments(
    parser: argparse.ArgumentParser, conditions_text: str, train_config: Path
) -> tuple[dict[str, Path], TrainPolicyConfig]:
    """``--conditions`` (existing policy folders) and the run's ``--train_config``; a bad
    one exits 2 through ``parser.error``, naming it."""
    try:
        conditions = parse_named_paths(conditions_text, "--conditions")
    except ValueError as exc:
        parser.error(str(exc))
    missing = [str(p) for p in conditions.values() if not p.is_dir()]
    if missing:
        parser.error(f"--conditions: no such policy folder {missing}")
    try:
        train_cfg = config_from_dict(TrainPolicyConfig, json.loads(train_config.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        parser.error(f"--train_config {str(train_config)!r}: {exc}")
    return conditions, train_cfg


def held_out_episodes(cfg: TrainPolicyConfig) -> dict[str, list[int]]:
    """The expert episodes the run's trainer did not pick, by composition kind."""
    trained = set(select_expert_episodes(cfg))
    out: dict[str, list[int]] = {"training_compositions": [], "novel_compositions": []}
    for r in read_episode_records(cfg.expert_root):
        index = int(r["episode_index"])
        if index in trained or (cfg.successful_only and not r.get("success", False)):
            continue
        novel = is_novel_composition(r["task_family"], r["object"], r.get("target") or "")
        out["novel_compositions" if novel else "training_compositions"].append(index)
    return out


Frame = tuple[Observation, str, np.ndarray]  # observation, prompt, expert actions (H, J)


def episode_frames(dataset: Any, stride: int, horizon: int) -> list[Frame]:
    """(observation, prompt, expert actions (horizon, J)) every ``stride`` frames of each
    episode of ``dataset``, where ``horizon`` recorded actions follow."""
    episodes = np.asarray(dataset.hf_dataset["episode_index"])
    out = []
    for episode in np.unique(episodes):
        rows = np.flatnonzero(episodes == episode)
        for i in rows[: len(rows) - horizon + 1 : stride]:
            item = dataset[int(i)]
            image = (item[SIM_IMAGE_KEY].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            state = item[STATE_KEY].numpy().astype(np.float64)
            actions = item["action"][:horizon].numpy()  # the chunk recorded from this frame
            obs = Observation(image, float(item["timestamp"]), state, SO101_JOINTS)
            out.append((obs, str(item["task"]), actions))
    return out


def action_error(policy: LeRobotChunkPolicy, frames: list[Frame]) -> dict[str, Any]:
    errors = []
    for obs, prompt, expert in frames:
        policy.reset()  # one inference from this frame
        chunk = policy.next_chunk(obs, prompt).joint_positions_rad[: len(expert)]
        errors.append(np.abs(chunk - expert[: len(chunk)]).mean(axis=0))
    per_joint = np.mean(errors, axis=0)
    return {
        "frames": len(frames),
        "l1_rad": float(per_joint.mean()),
        "l1_rad_per_joint": dict(zip(SO101_JOINTS, np.round(per_joint, 4).tolist(), strict=True)),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    parser = run_parser(__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=4, help="every k-th frame of an episode")
    args = parser.parse_args(argv)
    if args.stride < 1:
        parser.error(f"--stride must be >= 1, got {args.stride}")
    conditions, train_cfg = read_run_arguments(parser, args.conditions, args.train_config)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    policies = {name: LeRobotChunkPolicy.from_pretrained(p) for name, p in conditions.items()}
    horizon = min(p.n_action_steps for p in policies.values())
    summary: dict[str, Any] = {"horizon_actions": horizon}
    for kind, episodes in held_out_episodes(train_cfg).items():
        if not episodes:
            continue
        frames = episode_frames(
            open_dataset(train_cfg.expert_root, episodes, horizon), args.stride, horizon
        )
        summary[kind] = {"episodes": len(episodes)}
        for name, policy in policies.items():
            summary[kind][name] = action_error(policy, frames)
    fields = {
        "conditions": {k: str(v) for k, v in conditions.items()},
        "train_config": str(args.train_config),
        "expert_root": str(train_cfg.expert_root),
    }
    write_bench_result(
        args.output, "benchmarks/bench_policy_offline.py", argv, 1, fields, summary, [], t0
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
