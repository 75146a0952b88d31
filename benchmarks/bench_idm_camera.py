"""IDMs against each other with a fixed and a moved camera: closed-loop replay success.

Each IDM is fed the scripted expert's frames one stride ahead as goals
(``inverse_dynamics.evaluate_idm``, closed loop: the simulator's current frame and measured
joints, the expert's frame at t + stride) on new expert rollouts from held-out seeds, once
with the camera where the expert data has it and once moved by up to ``--camera_jitter_m``
per axis (``executor-dreamgen``'s novel_environment jitter). Every IDM replays the same
rollouts, so the differences against the first IDM are paired (item bootstrap, 95 %).

    .venv/bin/python benchmarks/bench_idm_camera.py \\
        --checkpoints committed=checkpoints/idm_sim,jitter=checkpoints/idm_sim_jitter \\
        --num_episodes 60 --seed_start 1000000 \\
        --output checkpoints/idm_sim_jitter/camera_report.json

Prints one JSON summary and writes it (atomically) to ``--output``. Bad input exits 2 and
names the value.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from executor_core.config_cli import (
    OneLineArgumentParser,
    configure_cli_logging,
    parse_named_paths,
)
from executor_sim.env import EnvConfig, make_env
from inverse_dynamics.evaluate_idm import fresh_rollouts, replay_all
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.closed_loop import write_bench_result
from self_distillation.stats import paired_difference

logger = logging.getLogger("bench_idm_camera")

MODES = ("open_loop", "closed_loop")


def parse_checkpoints(text: str) -> dict[str, Path]:
    """``name=folder,...`` -> {name: folder}, each an IDM checkpoint; the first is the
    baseline."""
    out = parse_named_paths(text, "--checkpoints")
    for name, path in out.items():
        if not (path / "config.json").is_file():
            raise ValueError(f"--checkpoints {name}: no IDM checkpoint at {str(path)!r}")
    return out


def camera_results(
    policies: dict[str, InverseDynamicsPolicy],
    camera_jitter_m: float,
    num_episodes: int,
    seed_start: int,
    num_frames: int,
    settle_steps: int,
) -> dict[str, Any]:
    """One camera setting: the same fresh rollouts replayed by every IDM."""
    image_px = next(iter(policies.values())).config.image_size_px
    env = make_env(EnvConfig(image_size_px=image_px, camera_jitter_m=camera_jitter_m))
    try:
        items = fresh_rollouts(env, num_episodes, seed_start, num_frames)
        return {name: replay_all(p, env, items, settle_steps) for name, p in policies.items()}
    finally:
        env.close()


def summarise(results: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Successes per IDM and mode, per family, and the paired difference to the first."""
    base = names[0]
    out: dict[str, Any] = {}
    for name in names:
        r = results[name]
        n = r["num_episodes"]
        row: dict[str, Any] = {"n": n, "by_family": r["by_family"]}
        for mode in MODES:
            row[mode] = sum(bool(e[mode]) for e in r["per_episode"])
            if name != base:
                a = {str(e["seed"]): [bool(e[mode])] for e in r["per_episode"]}
                b = {str(e["seed"]): [bool(e[mode])] for e in results[base]["per_episode"]}
                d, low, high = paired_difference(a, b)
                row[f"{mode}_minus_{base}"] = [round(100 * x, 1) for x in (d, low, high)]
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoints", required=True, help="name=IDM folder,... (the first: the baseline)"
    )
    parser.add_argument("--num_episodes", type=int, default=60)
    parser.add_argument("--seed_start", type=int, default=1_000_000)
    parser.add_argument("--camera_jitter_m", type=float, default=0.03)
    parser.add_argument("--num_frames", type=int, default=64)
    parser.add_argument("--settle_steps", type=int, default=10)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        checkpoints = parse_checkpoints(args.checkpoints)
    except ValueError as exc:
        parser.error(str(exc))
    if args.num_episodes < 1:
        parser.error(f"--num_episodes must be >= 1, got {args.num_episodes!r}")
    if not 0.0 < args.camera_jitter_m <= 0.05:
        parser.error(f"--camera_jitter_m must be in (0, 0.05], got {args.camera_jitter_m!r}")
    if args.num_frames < 8 or args.settle_steps < 0:
        parser.error(
            f"need --num_frames >= 8 and --settle_steps >= 0, got {args.num_frames!r}, "
            f"{args.settle_steps!r}"
        )
    configure_cli_logging()
    torch.set_num_threads(1)
    began = time.perf_counter()
    policies = {n: InverseDynamicsPolicy.from_pretrained(p) for n, p in checkpoints.items()}
    names = list(policies)
    summary: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    for camera, jitter in (("fixed", 0.0), ("moved", args.camera_jitter_m)):
        logger.info("camera %s (jitter %.3f m): %d rollouts", camera, jitter, args.num_episodes)
        results = camera_results(
            policies, jitter, args.num_episodes, args.seed_start, args.num_frames, args.settle_steps
        )
        summary[camera] = summarise(results, names)
        for name in names:
            records += [{"camera": camera, "idm": name, **e} for e in results[name]["per_episode"]]
    fields = {
        "checkpoints": {n: str(p) for n, p in checkpoints.items()},
        "num_episodes": args.num_episodes,
        "seed_start": args.seed_start,
        "camera_jitter_m": args.camera_jitter_m,
    }
    script = "benchmarks/bench_idm_camera.py"
    write_bench_result(args.output, script, argv, 1, fields, summary, records, began)


if __name__ == "__main__":
    main()
