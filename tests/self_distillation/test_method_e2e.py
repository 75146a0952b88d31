"""The whole method on tiny models: proposal -> generation -> distillation -> 2 GRPO steps
-> evaluation -> report, each stage through its debug preset (as its CLI runs it)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from self_distillation import demo_generation, distill, evaluate, grpo_trainer, report
from self_distillation.closed_loop import ClosedLoopConfig


def test_debug_pipeline_end_to_end(debug_items: Path, tmp_path: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    stats = json.loads((debug_items / "proposal_stats.json").read_text())
    assert stats["accepted"] == 4
    assert stats["proposer"] == "sim_task_family"

    # Demonstrator videos -> LeRobotDataset (+ executor_episodes.jsonl).
    demos = tmp_path / "demos"
    dataset = demo_generation.run_generate(
        replace(demo_generation.PRESETS["debug"], items=debug_items, output_dir=demos)
    )
    ds = LeRobotDataset("local/executor-demos", root=dataset)
    assert ds.num_episodes == 4
    num_video_frames = np.load(next((demos / "clips").glob("*.npy"))).shape[0]
    assert num_video_frames >= 3
    # each generated frame held frame_stride = 4 steps, the last one once
    assert ds.num_frames == 4 * ((num_video_frames - 1) * 4 + 1)
    episodes = [
        json.loads(x) for x in (dataset / "meta/executor_episodes.jsonl").read_text().splitlines()
    ]
    assert [e["prompt"] for e in episodes] == [ds.meta.episodes[i]["tasks"][0] for i in range(4)]
    assert all(e["solution"].startswith("1. ") and e["success"] in (True, False) for e in episodes)
    # dataset frame k * stride is generated frame k (lossy video: compare distances)
    clip = np.load(demos / "clips" / f"{episodes[1]['item_id']}.npy").astype(np.float32)
    start = ds.meta.episodes[1]["dataset_from_index"]

    def decoded(i: int) -> np.ndarray:
        return ds[start + i]["observation.images.scene"].permute(1, 2, 0).numpy() * 255

    assert np.abs(decoded(0) - clip[0]).mean() < 12  # the real first frame survives
    errors = [np.abs(decoded(8) - clip[k]).mean() for k in range(num_video_frames)]
    assert int(np.argmin(errors)) == 2, errors

    # Self-distillation (the video trainer, 2 steps), then 2 GRPO steps from its output.
    distilled = distill.run_distill(
        replace(distill.PRESETS["debug"], demos=dataset, output_dir=tmp_path / "distilled")
    )
    assert (distilled / "model_index.json").is_file()
    rl = grpo_trainer.train_grpo(
        replace(
            grpo_trainer.PRESETS["debug"],
            items=debug_items,
            output_dir=tmp_path / "grpo",
            init_pipeline=distilled,
        )
    )
    metrics = (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["step"] for m in metrics] == [1, 2]

    # Evaluation of the 4 conditions + closed loop, then the report.
    eval_dir = tmp_path / "eval"
    results = evaluate.run_evaluate(
        replace(
            evaluate.PRESETS["debug"],
            items=debug_items,
            output_dir=eval_dir,
            models=evaluate.ModelPaths(
                demonstrator=None, executor_distilled=distilled, executor_rl=rl, idm=None
            ),
            closed_loop=ClosedLoopConfig(
                num_episodes=1,
                max_replans=1,
                max_steps=8,
                image_size_px=32,
                conditions=("expert", "executor_rl"),
            ),
        )
    )
    assert set(results["worldtasks"]) == set(evaluate.CONDITIONS)
    for summary in results["worldtasks"].values():
        assert summary["n"] == 2
        assert 0.0 <= summary["ci95_low"] <= summary["ci95_high"] <= 1.0
        assert 0.0 <= summary["physics"] <= 1.0
    assert results["closed_loop"]["executor_rl"]["mean_steps"] == 8.0
    rl = results["done_when"]["rl_minus_distilled"]
    low, high = rl["paired_ci95"]  # conditions share items and seeds: the paired interval
    assert low <= rl["diff"] <= high
    md = report.run_report(
        replace(
            report.PRESETS["debug"],
            eval_dir=eval_dir,
            grpo_metrics=tmp_path / "grpo" / "metrics.jsonl",
        )
    )
    text = md.read_text()
    assert "| executor_rl |" in text
    assert "grpo_reward.png" in text
    assert (eval_dir / "worldtasks.png").is_file()
    assert (eval_dir / "grpo_reward.png").is_file()
    assert list((eval_dir / "closed_loop_videos" / "executor_rl").glob("*-imagined.mp4"))


def test_distillation_resumes_from_its_checkpoint(
    debug_items: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The distillation entry point: 2 debug steps, then a rerun with 3 resumes at step 2."""
    dataset = demo_generation.run_generate(
        replace(
            demo_generation.PRESETS["debug"],
            items=debug_items,
            output_dir=tmp_path / "d",
            judge_demos=False,
        )
    )
    cfg = replace(distill.PRESETS["debug"], demos=dataset, output_dir=tmp_path / "distilled")
    distill.run_distill(cfg)
    ckpts = sorted(p.name for p in (tmp_path / "distilled" / "checkpoints").glob("step_*"))
    assert ckpts[-1] == "step_000002"
    with caplog.at_level(logging.INFO, logger="video_models.train_executor"):
        distill.run_distill(replace(cfg, max_steps=3))
    assert "step_000002 at step 2" in caplog.text  # resumed, not restarted
    state = json.loads(
        (tmp_path / "distilled" / "checkpoints" / "step_000003" / "training_state.json").read_text()
    )
    assert state["step"] == 3
    # a rerun in the same folder on other demos is refused, naming the setting, instead of
    # training on the cached clips of the first
    with pytest.raises(ValueError, match="only_judged_success: cached False, this run True"):
        distill.run_distill(replace(cfg, max_steps=4, only_judged_success=True))
    assert not (tmp_path / "distilled" / "checkpoints" / "step_000004").exists()
