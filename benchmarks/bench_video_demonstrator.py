"""Evaluate a video world model on held-out simulated tasks with the programmatic judge.

For held-out seeds (>= 1_000_000, never in a training set) the simulator lays out a scene
and a task; the model imagines the video from the first frame and (a) the detailed
solution, (b) the short prompt only; the programmatic judge reads the final frames. The
scripted expert's own video of the same seed is judged too: it says how often the judge
agrees with the simulator's success predicate, and which tasks the expert can solve.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_video_demonstrator.py \
        --pipeline checkpoints/demonstrator_sim --num-tasks 60

Prints a table and writes the per-task results as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from executor_core.atomic_io import write_json_atomic
from executor_sim.env import EnvConfig, make_env
from executor_sim.rollout import rollout_expert
from self_distillation.judges import ProgrammaticJudge
from video_models.pipeline_executor import ExecutorVideoPipeline
from video_models.train_executor import write_sample_strip

HELD_OUT_SEED_START = 1_000_000
FAMILIES = ("pick_place", "push", "stack")


def held_out_tasks(num_tasks: int, size_px: int, num_frames: int, frame_stride: int) -> list[dict]:
    """First frame, episode record and the expert's clip of each held-out seed."""
    env = make_env(EnvConfig(image_size_px=size_px))
    tasks = []
    for i in range(num_tasks):
        seed = HELD_OUT_SEED_START + i
        ep = rollout_expert(env, seed, FAMILIES[i % len(FAMILIES)], 64)
        steps = [min(k * frame_stride, len(ep.images) - 1) for k in range(num_frames)]
        tasks.append(
            {
                "seed": seed,
                "record": ep.metadata,
                "first": ep.images[0],
                "expert_clip": ep.images[steps],
            }
        )
    env.close()
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="checkpoints/demonstrator_sim")
    parser.add_argument("--num-tasks", type=int, default=60)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="outputs/eval_demonstrator.json")
    parser.add_argument("--save-videos", default="", help="folder for PNG strips (optional)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = ExecutorVideoPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    cfg = pipe.config
    judge = ProgrammaticJudge()
    t0 = time.time()
    tasks = held_out_tasks(args.num_tasks, cfg.size_px, cfg.num_frames, 4)
    print(
        f"{len(tasks)} held-out tasks laid out and solved by the expert in {time.time() - t0:.0f} s"
    )
    results = []
    gen_s = 0.0
    for start in range(0, len(tasks), args.batch):
        chunk = tasks[start : start + args.batch]
        images = [t["first"] for t in chunk]
        seeds = [t["seed"] for t in chunk]
        videos = {}
        for field in ("solution", "prompt"):
            t1 = time.time()
            videos[field] = pipe(
                images,
                [t["record"][field] for t in chunk],
                seed=seeds,
                num_inference_steps=args.steps,
                guidance_scale=args.guidance,
            ).frames
            gen_s += time.time() - t1
        for j, t in enumerate(chunk):
            row = {
                "seed": t["seed"],
                "family": t["record"]["task_family"],
                "prompt": t["record"]["prompt"],
                "expert_success": bool(t["record"]["success"]),
                "judge_on_expert": judge.judge(t["expert_clip"], t["record"]).success,
            }
            for field in ("solution", "prompt"):
                verdict = judge.judge(videos[field][j], t["record"])
                row[f"{field}_success"] = verdict.success
                row[f"{field}_reason"] = verdict.reason
            results.append(row)
            if args.save_videos:
                both = np.concatenate(
                    [t["expert_clip"], videos["solution"][j], videos["prompt"][j]], axis=1
                )
                write_sample_strip(both, Path(args.save_videos) / f"seed{t['seed']}.png")

    def rate(rows: list[dict], key: str) -> str:
        return f"{np.mean([r[key] for r in rows]):.0%}" if rows else "-"

    print(f"\n{'subset':<22}{'n':>4}{'solution':>10}{'prompt':>8}{'expert':>8}{'judge=sim':>11}")
    subsets = [("all", results)] + [(f, [r for r in results if r["family"] == f]) for f in FAMILIES]
    subsets.append(("expert-solvable", [r for r in results if r["expert_success"]]))
    for name, rows in subsets:
        agree = (
            f"{np.mean([r['judge_on_expert'] == r['expert_success'] for r in rows]):.0%}"
            if rows
            else "-"
        )
        print(
            f"{name:<22}{len(rows):>4}{rate(rows, 'solution_success'):>10}"
            f"{rate(rows, 'prompt_success'):>8}{rate(rows, 'expert_success'):>8}{agree:>11}"
        )
    n_videos = 2 * len(results)
    print(
        f"\nsampling: {gen_s / n_videos:.2f} s per video (batched {args.batch}, "
        f"{args.threads} threads, {args.steps or cfg.num_inference_steps} steps, guidance "
        f"{args.guidance or cfg.guidance_scale})"
    )
    write_json_atomic(args.out, results, indent=1)


if __name__ == "__main__":
    main()
