"""Throughput of the method's stages on this machine (prints its figures).

* proposals/s of the scene-grounded (simulator) proposer and of a tiny random VLM;
* demo videos/s of the Demonstrator pipeline (random weights of ``model_preset``);
* seconds per GRPO step (sampling + judging + update) at the preset's group size.

    MUJOCO_GL=egl HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_method.py --preset debug
    MUJOCO_GL=egl HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_method.py --preset sim
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from executor_core.config_cli import parse_config


@dataclass
class BenchConfig:
    model_preset: str = "sim"
    num_scenes: int = 16
    image_size_px: int = 64
    demo_videos: int = 16
    demo_batch_size: int = 8
    grpo_steps: int = 2
    grpo_prompts_per_step: int = 4
    grpo_group_size: int = 8
    device: str = "auto"
    threads: int = 2


PRESETS = {
    "debug": BenchConfig(
        model_preset="debug",
        num_scenes=4,
        image_size_px=32,
        demo_videos=4,
        demo_batch_size=2,
        grpo_steps=1,
        grpo_prompts_per_step=2,
        grpo_group_size=2,
        threads=1,
    ),
    "sim": BenchConfig(),
}


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    cfg = parse_config(BenchConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    torch.set_num_threads(cfg.threads)
    from self_distillation import demo_generation as dg
    from self_distillation import grpo_trainer as gt
    from self_distillation.task_items import (
        SimSceneTaskSource,
        items_from_batch,
        render_sim_scenes,
        save_items,
    )
    from self_distillation.task_proposal import SimTaskFamilyProposer, VLMTaskProposer
    from self_distillation.tiny_vlm import build_tiny_idefics3
    from self_distillation.vlm_backends import TransformersVLM, TransformersVLMConfig

    work = Path(tempfile.mkdtemp(prefix="bench_method_"))
    scenes = render_sim_scenes(range(cfg.num_scenes), cfg.image_size_px)

    t0 = time.perf_counter()
    batch = SimTaskFamilyProposer(SimSceneTaskSource()).propose(scenes, 2)
    sim_s = time.perf_counter() - t0
    print(
        f"sim proposer: {batch.stats.total / sim_s:.1f} proposals/s "
        f"({batch.stats.accepted} accepted of {batch.stats.total})"
    )

    vlm = TransformersVLM(
        TransformersVLMConfig(
            model_path=build_tiny_idefics3(work / "vlm"),
            max_new_tokens=32,
            batch_size=8,
            device=cfg.device,
        )
    )
    t0 = time.perf_counter()
    vbatch = VLMTaskProposer(vlm).propose(scenes, 1)
    vlm_s = time.perf_counter() - t0
    print(
        f"tiny VLM proposer (32 new tokens, batch 8, {vlm.device}): "
        f"{vbatch.stats.total / vlm_s:.1f} proposals/s"
    )

    items = items_from_batch(scenes, batch.proposals)
    save_items(items, work / "items")
    demo_cfg = replace(
        dg.PRESETS["debug"],
        items=work / "items",
        output_dir=work / "demos",
        model_preset=cfg.model_preset,
        batch_size=cfg.demo_batch_size,
        limit=None,
        device=cfg.device,
        judge_demos=False,
    )
    todo = items[: cfg.demo_videos]
    t0 = time.perf_counter()
    dg.generate_clips(demo_cfg, todo)
    demo_s = time.perf_counter() - t0
    print(
        f"Demonstrator ({cfg.model_preset}, random weights): {len(todo) / demo_s:.2f} "
        f"videos/s incl. model build"
    )

    grpo_cfg = replace(
        gt.PRESETS["debug"],
        items=work / "items",
        output_dir=work / "grpo",
        model_preset=cfg.model_preset,
        num_steps=cfg.grpo_steps,
        prompts_per_step=cfg.grpo_prompts_per_step,
        group_size=cfg.grpo_group_size,
        micro_batch_size=8,
        num_inference_steps=10,
        save_every=10_000,
        device=cfg.device,
        limit_items=None,
    )
    gt.train_grpo(grpo_cfg)
    import json

    rows = [json.loads(x) for x in (work / "grpo" / "metrics.jsonl").read_text().splitlines()]
    per_step = np.mean([r["seconds"] for r in rows])
    videos = cfg.grpo_prompts_per_step * cfg.grpo_group_size
    print(
        f"GRPO ({cfg.model_preset}, {videos} videos/step, 10 sampling steps): {per_step:.2f} s/step"
    )


if __name__ == "__main__":
    main()
