"""Simulator speed: rendered + simulated frames per second, and episode generation cost.

Prints, for the primitive-geom arm (the default) and the STL-mesh arm:
  - render-only ms/frame at 64 and 128 px,
  - physics ms per control step (50 x 2 ms substeps = 0.1 s of sim time),
  - rendered+simulated frames per second (one env.step = physics + one frame) on one core,
and with --episodes N the wall time of N expert episodes (64 frames, 64 px) and, with
--dataset, the wall time and size of writing a LeRobotDataset of N episodes.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_sim.py --episodes 10 --dataset
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from executor_sim import EnvConfig, expert_policy, make_env
from executor_sim.generate import GenerateConfig, generate


def _time_per_call(fn, repeats: int) -> float:
    """Seconds of this process's CPU time per call: on a shared, oversubscribed machine
    wall time measures the neighbours; CPU time is what one core spends on us."""
    fn()  # warm-up (first render allocates the GL context)
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats


def bench_frames(mesh_arm: bool, repeats: int) -> None:
    name = "mesh arm     " if mesh_arm else "primitive arm"
    rng = np.random.default_rng(0)
    for size in (64, 128):
        env = make_env(EnvConfig(image_size_px=size, mesh_arm=mesh_arm))
        env.reset(0)
        render_s = _time_per_call(lambda e=env, s=size: e.render(s), repeats)

        def step(e=env) -> None:
            e.step(e.home_rad + rng.uniform(-0.1, 0.1, 6))

        step_s = _time_per_call(step, repeats)
        physics_s = _time_per_call(lambda e=env: _physics_only(e), repeats)
        print(
            f"{name} {size:4d} px: render {render_s * 1e3:6.2f} ms/frame, physics "
            f"{physics_s * 1e3:5.2f} ms/step ({env.substeps} x 2 ms), step+render "
            f"{step_s * 1e3:6.2f} ms -> {1 / step_s:6.1f} frames/s"
        )
        env.close()


def _physics_only(env) -> None:
    import mujoco

    for _ in range(env.substeps):
        mujoco.mj_step(env.model, env.data)


def bench_episodes(n: int) -> None:
    env = make_env(EnvConfig(image_size_px=64))
    start = time.perf_counter()
    cpu_start = time.process_time()
    successes = 0
    for seed in range(n):
        env.reset(seed)
        policy = expert_policy(env)
        for _ in range(64):
            env.step(policy(env))
        successes += env.task.is_success(env)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(
        f"{n} expert episodes (64 frames, 64 px), one process: wall {wall:.1f} s, CPU "
        f"{cpu:.1f} s ({cpu / n:.2f} CPU s/episode), success {successes}/{n}"
    )


def bench_dataset(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = GenerateConfig(root=Path(tmp) / "ds", repo_id="bench/sim", num_episodes=n, workers=2)
        start = time.perf_counter()
        summary = generate(cfg, progress=False)
        wall = time.perf_counter() - start
        size = sum(p.stat().st_size for p in cfg.root.rglob("*") if p.is_file())
        print(
            f"dataset of {n} episodes, 2 workers: {wall:.1f} s total "
            f"(rollout {summary['rollout_s']:.1f} s), {size / n / 1024:.0f} KiB/episode"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--episodes", type=int, default=0)
    parser.add_argument("--dataset", action="store_true")
    parser.add_argument("--skip-mesh", action="store_true")
    args = parser.parse_args()
    bench_frames(mesh_arm=False, repeats=args.repeats)
    if not args.skip_mesh:
        bench_frames(mesh_arm=True, repeats=max(5, args.repeats // 5))
    if args.episodes:
        bench_episodes(args.episodes)
        if args.dataset:
            bench_dataset(args.episodes)


if __name__ == "__main__":
    main()
