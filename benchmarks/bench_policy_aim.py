"""Where does a policy's first chunk go: to the cube the prompt names, or another one?

A policy that fits its demo scenes and fails on new layouts either aims at the right cube
and misses it, or aims at the wrong one. This bench tells them apart without running the
episode: from the first frame of each scene (the arm at home), one inference of the
policy's whole chunk (``chunk_size`` actions), mapped to the grasp point by forward
kinematics (``visuomotor_policy.grasp_space``; a grasp-space policy's chunk is solved into
joints first, as the goal runner's adapter does). Per scene: the closest approach of the
grasp point to the named cube (horizontal, metres), and whether it passes nearer another
cube of the scene. Two scene sets: the run's own expert demo scenes (as
``bench_policy_train_scenes``) and ``executor-dreamgen``'s held-out items on
``--seed_set`` (validation by default).

    R=outputs/policy_sim
    .venv/bin/python benchmarks/bench_policy_aim.py \\
        --conditions expert_only=$R/fp16_reference/expert_only/pretrained_model,... \\
        --train_config $R/nostate_expert_only/train_config.json --num_items 24 \\
        --output checkpoints/policy_sim/validation/aim.json

Prints one JSON summary and writes it (atomically) to ``--output``.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from bench_policy_offline import read_run_arguments, run_parser
from bench_policy_train_scenes import training_items

from executor_core.types import Observation
from executor_sim.env import EnvConfig, TabletopEnv, make_env
from self_distillation.closed_loop import task_for_item, write_bench_result
from self_distillation.dreamgen import PRESETS, split_items
from self_distillation.task_items import TaskItem
from visuomotor_policy.configuration_policy import PolicyIOConfig
from visuomotor_policy.grasp_space import GraspSpace
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy, longest_action_steps

logger = logging.getLogger("bench_policy_aim")
NEAR_M = 0.03  # "reaches the cube": the grasp point passes within 3 cm of its centre


def aim(
    policy: LeRobotChunkPolicy, env: TabletopEnv, item: TaskItem, space: GraspSpace
) -> dict[str, Any]:
    """One scene: the first chunk's closest approach to the named cube and to the others."""
    task = task_for_item(env, item)
    assert env.scene is not None
    obs = env.observation()
    observation = Observation(obs["image"], 0.0, obs["state"].astype(float), policy.joint_names)
    policy.reset()
    chunk = policy.next_chunk(observation, task.prompt).joint_positions_rad
    points = space.to_grasp(chunk)[:, :2]

    def closest(name: str) -> float:
        xy = env.object_position(name)[:2]
        return float(np.linalg.norm(points - xy, axis=1).min())

    others = [closest(c) for c in env.scene.cubes if c != task.obj]
    to_named = closest(task.obj)
    return {
        "item_id": item.item_id,
        "prompt": task.prompt,
        "family": task.family,
        "closest_to_named_m": to_named,
        "closest_to_other_m": min(others) if others else None,
        "nearer_another_cube": bool(others) and min(others) < to_named,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    named = np.array([r["closest_to_named_m"] for r in rows])
    return {
        "n": len(rows),
        "median_closest_to_named_m": float(np.median(named)),
        "within_3cm": float((named < NEAR_M).mean()),
        "nearer_another_cube": float(np.mean([r["nearer_another_cube"] for r in rows])),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    parser = run_parser(__doc__.splitlines()[0])
    parser.add_argument("--num_items", type=int, default=24, help="held-out items")
    parser.add_argument("--seed_set", choices=("validation", "report"), default="validation")
    args = parser.parse_args(argv)
    conditions, train_cfg = read_run_arguments(parser, args.conditions, args.train_config)
    if args.num_items <= 0:
        parser.error(f"--num_items must be > 0, got {args.num_items}")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    space = GraspSpace()
    env = make_env(EnvConfig())
    dreamgen = replace(PRESETS["sim"], seed_set=args.seed_set, num_episodes=args.num_items)
    records: list[dict[str, Any]] = []
    try:
        scenes = {"demo_scenes": training_items(train_cfg, env)}
        scenes["held_out"] = split_items(dreamgen, "held_out")
        for name, path in conditions.items():
            probe = LeRobotChunkPolicy.from_pretrained(path)
            steps = longest_action_steps(probe.policy.config) or probe.n_action_steps
            policy = LeRobotChunkPolicy.from_pretrained(path, PolicyIOConfig(n_action_steps=steps))
            for scene_set, items in scenes.items():
                for item in items:
                    row = aim(policy, env, item, space)
                    records.append({"condition": name, "scenes": scene_set, **row})
    finally:
        env.close()
    summary = {
        name: {
            scene_set: summarise(
                [r for r in records if r["condition"] == name and r["scenes"] == scene_set]
            )
            for scene_set in ("demo_scenes", "held_out")
        }
        for name in conditions
    }
    fields = {
        "conditions": {k: str(v) for k, v in conditions.items()},
        "train_config": str(args.train_config),
        "seed_set": args.seed_set,
        "num_items": args.num_items,
    }
    script = "benchmarks/bench_policy_aim.py"
    write_bench_result(args.output, script, argv, 1, fields, summary, records, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
