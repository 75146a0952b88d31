"""Executed success batch after batch: a process pool started for every batch against one
kept for the run (``self_distillation.executed_success.ExecutionPool``, what the executed
judge now keeps for its life).

An RL step or a demo batch executes one batch of videos; with a pool started per batch each
batch also pays the workers' start (spawn re-imports the caller's modules, loads the IDM and
builds the scene). The videos are expert probe clips of held-out seeds (16 frames at stride
4, 64 px), executed by the committed IDM; both ways must give the same verdicts.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_execution_pool.py --batches 4 \
        --videos_per_batch 8 --workers 2
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from executor_core.config_cli import cli_main, configure_cli_logging, parse_config
from executor_sim.env import EnvConfig, make_env
from executor_sim.generate import HELD_OUT_SEED_START
from executor_sim.probe_videos import render_probe
from executor_sim.tasks import TASK_FAMILIES
from self_distillation.executed_success import (
    ExecutedSuccessConfig,
    ExecutionPool,
    SimStart,
    execute_videos,
)

logger = logging.getLogger("bench_execution_pool")


@dataclass
class PoolBenchConfig:
    batches: int = 4
    videos_per_batch: int = 8
    workers: int = 2
    idm_path: Path = Path("checkpoints/idm_sim")
    first_seed: int = HELD_OUT_SEED_START + 700

    def __post_init__(self) -> None:
        for name in ("batches", "videos_per_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.workers < 2:
            raise ValueError(f"workers must be >= 2 (a pool), got {self.workers!r}")


PRESETS = {"debug": PoolBenchConfig(batches=2, videos_per_batch=2)}


def expert_clips(cfg: PoolBenchConfig) -> tuple[list, list[SimStart]]:
    env = make_env(EnvConfig(image_size_px=64))
    try:
        probes = [
            render_probe(env, "expert", cfg.first_seed + i, TASK_FAMILIES[i % len(TASK_FAMILIES)])
            for i in range(cfg.videos_per_batch)
        ]
    finally:
        env.close()
    return [p.frames for p in probes], [SimStart.from_record(p.record) for p in probes]


def run(cfg: PoolBenchConfig) -> dict:
    videos, starts = expert_clips(cfg)
    exec_cfg = ExecutedSuccessConfig(idm_path=cfg.idm_path, workers=cfg.workers)
    timings: dict[str, list[float]] = {"pool_per_batch": [], "kept_pool": []}
    verdicts: dict[str, list[list[bool]]] = {"pool_per_batch": [], "kept_pool": []}
    for _ in range(cfg.batches):
        t = time.perf_counter()
        batch = execute_videos(videos, starts, exec_cfg)
        timings["pool_per_batch"].append(time.perf_counter() - t)
        verdicts["pool_per_batch"].append([r.success for r in batch.results])
    with ExecutionPool(exec_cfg) as pool:
        for _ in range(cfg.batches):
            t = time.perf_counter()
            batch = execute_videos(videos, starts, exec_cfg, pool=pool)
            timings["kept_pool"].append(time.perf_counter() - t)
            verdicts["kept_pool"].append([r.success for r in batch.results])
    if verdicts["pool_per_batch"] != verdicts["kept_pool"]:
        raise RuntimeError(f"the two ways disagree: {verdicts!r}")
    return {
        "config": {k: str(v) for k, v in vars(cfg).items()},
        "seconds_per_batch": timings,
        "mean_s_per_batch": {k: sum(v) / len(v) for k, v in timings.items()},
        "success_rate": sum(map(sum, verdicts["kept_pool"])) / (cfg.batches * len(videos)),
    }


@cli_main("bench-execution-pool")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(PoolBenchConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    result = run(cfg)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
