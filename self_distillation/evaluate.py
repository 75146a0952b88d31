"""``executor-evaluate``: the method's figures on held-out items.

* **WorldTasks-style** judged success, with 95 % Wilson intervals, of four conditions:
  ``demonstrator_prompt`` (Demonstrator, short prompt), ``demonstrator_solution``
  (Demonstrator, detailed solution), ``executor_distilled`` and ``executor_rl`` (Executor
  after self-distillation / after GRPO, short prompt).
* **DreamGen-Bench-style** scores of the same videos: instruction following (the judge's
  score; a VLM judge's 0-10 rating / 10) and physics plausibility (a VLM judge's rating, or
  the programmatic proxy of :mod:`plausibility` for the programmatic judge).
* **Closed-loop** success of the full stack in the simulator vs the scripted expert
  (:mod:`closed_loop`).

Writes ``results.json`` (all figures + the issue's done-when checks), ``worldtasks.jsonl``
and ``closed_loop.jsonl`` (one record per video / episode) and sample videos; then
``executor-report`` turns them into markdown + plots.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from executor_core.atomic_io import write_bytes_atomic
from executor_core.config_cli import cli_main, configure_cli_logging, parse_config, save_config_json
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.test_doubles import TinyRandomInverseDynamics
from executor_core.video_io import save_video_mp4
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.closed_loop import ClosedLoopConfig, make_env, run_expert, run_stack
from self_distillation.demo_generation import item_seed
from self_distillation.judges.programmatic import ProgrammaticJudge
from self_distillation.judging import (
    JudgeConfig,
    episode_for_item,
    judge_videos,
    make_judge,
)
from self_distillation.plausibility import physics_plausibility
from self_distillation.stats import Rate, difference_interval, paired_difference, success_rate
from self_distillation.task_items import TaskItem, load_items, write_png
from self_distillation.video_models import load_video_pipeline, resolve_device
from video_models.world_model import VideoWorldModel

logger = logging.getLogger(__name__)

# condition -> (model, text given)
CONDITIONS: dict[str, tuple[str, str]] = {
    "demonstrator_prompt": ("demonstrator", "prompt"),
    "demonstrator_solution": ("demonstrator", "solution"),
    "executor_distilled": ("executor_distilled", "prompt"),
    "executor_rl": ("executor_rl", "prompt"),
}


@dataclass(frozen=True)
class ModelPaths:
    demonstrator: Path | None = Path("checkpoints/demonstrator_sim")
    executor_distilled: Path | None = Path("outputs/method_sim/executor_distilled/pipeline")
    executor_rl: Path | None = Path("outputs/method_sim/grpo/pipeline")
    idm: Path | None = Path("checkpoints/idm_sim")


@dataclass
class EvalConfig:
    items: Path = Path(
        "outputs/method_sim/heldout"
    )  # held-out items (executor-propose --preset sim-heldout)
    output_dir: Path = Path("outputs/method_sim/eval")
    models: ModelPaths = field(default_factory=ModelPaths)
    # Debug only: a model whose path is None becomes a random model_preset pipeline (and a
    # missing IDM the random IDM test double). Off: a missing path is an error.
    allow_random_models: bool = False
    model_preset: str = "sim"
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    samples_per_item: int = 2
    limit_items: int | None = None
    batch_size: int = 8
    num_sample_videos: int = 4
    closed_loop: ClosedLoopConfig = field(default_factory=ClosedLoopConfig)
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.conditions) - set(CONDITIONS))
        if unknown:
            raise ValueError(f"unknown conditions {unknown!r}; known {sorted(CONDITIONS)}")
        if self.samples_per_item <= 0 or self.batch_size <= 0 or self.num_sample_videos < 0:
            raise ValueError(
                f"need samples_per_item > 0, batch_size > 0, num_sample_videos >= 0; got "
                f"{self.samples_per_item!r}, {self.batch_size!r}, {self.num_sample_videos!r}"
            )


PRESETS: dict[str, EvalConfig] = {
    "debug": EvalConfig(
        items=Path("outputs/method_debug/proposals"),
        output_dir=Path("outputs/method_debug/eval"),
        # the debug chain's own outputs; the Demonstrator and the IDM are random
        models=ModelPaths(
            demonstrator=None,
            executor_distilled=Path("outputs/method_debug/executor_distilled/pipeline"),
            executor_rl=Path("outputs/method_debug/grpo/pipeline"),
            idm=None,
        ),
        allow_random_models=True,
        model_preset="debug",
        samples_per_item=1,
        limit_items=2,
        batch_size=2,
        num_sample_videos=1,
        closed_loop=ClosedLoopConfig(num_episodes=2, max_replans=2, max_steps=24, image_size_px=32),
    ),
    "sim": EvalConfig(),
}


def model_path(cfg: EvalConfig, name: str) -> Path | None:
    path = getattr(cfg.models, name)
    if path is None and not cfg.allow_random_models:
        raise ValueError(f"models.{name} is not set (allow_random_models is off)")
    return path


# -------------------------------------------------------------------------- WorldTasks
def generate_condition(
    pipe: Any, items: list[TaskItem], text: str, cfg: EvalConfig
) -> list[tuple[TaskItem, int, np.ndarray]]:
    """(item, sample index, video (T, S, S, 3) uint8) for every item x sample."""
    jobs = [(it, s) for it in items for s in range(cfg.samples_per_item)]
    out = []
    for start in range(0, len(jobs), cfg.batch_size):
        batch = jobs[start : start + cfg.batch_size]
        texts = [it.proposal.solution_text if text == "solution" else it.prompt for it, _ in batch]
        frames = pipe(
            [it.image_rgb for it, _ in batch],
            texts,
            seed=[item_seed(it.item_id, cfg.seed + 1000 * s) for it, s in batch],
        ).frames
        out.extend((it, s, f) for (it, s), f in zip(batch, frames, strict=True))
    return out


def score_video(
    frames: np.ndarray, episode: dict, verdict: Any, programmatic: Any
) -> dict[str, Any]:
    """One video's row: judged success and the two DreamGen-Bench-style scores."""
    if "physics" in verdict.details:  # a VLM judge rated both
        instruction = verdict.details["instruction_following"] / 10.0
        physics = verdict.details["physics"] / 10.0
    elif "error" in verdict.details:  # a VLM judge whose answer was unusable: no credit
        instruction = physics = 0.0
    else:
        instruction = verdict.score
        physics, _ = physics_plausibility(frames, episode, programmatic)
    return {
        "success": bool(verdict.success),
        "judge_score": float(verdict.score),
        "instruction_following": float(instruction),
        "physics": float(physics),
        "reason": verdict.reason[:300],
    }


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(records)
    wins = sum(r["success"] for r in records)
    inst = np.array([r["instruction_following"] for r in records])
    phys = np.array([r["physics"] for r in records])

    def sem(a):
        return float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0

    return {
        **success_rate(wins, n).to_dict(),
        "instruction_following": float(inst.mean()),
        "instruction_following_sem": sem(inst),
        "physics": float(phys.mean()),
        "physics_sem": sem(phys),
    }


def evaluate_worldtasks(
    cfg: EvalConfig, items: list[TaskItem], judge: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:

    programmatic = ProgrammaticJudge()
    out = Path(cfg.output_dir)
    summaries, records = {}, []
    pipes: dict[str, Any] = {}
    for condition in cfg.conditions:
        model, text = CONDITIONS[condition]
        if model not in pipes:
            pipes[model] = load_video_pipeline(
                model_path(cfg, model), cfg.model_preset, cfg.device, seed=len(pipes)
            )
        t0 = time.perf_counter()
        videos = generate_condition(pipes[model], items, text, cfg)
        episodes = [episode_for_item(item) for item, _, _ in videos]
        verdicts = judge_videos(judge, [frames for _, _, frames in videos], episodes)
        rows = []
        for k, ((item, sample, frames), episode, verdict) in enumerate(
            zip(videos, episodes, verdicts, strict=True)
        ):
            row = {
                "condition": condition,
                "item_id": item.item_id,
                "sample": sample,
                "prompt": item.prompt,
                **score_video(frames, episode, verdict, programmatic),
            }
            if k < cfg.num_sample_videos:
                path = out / "videos" / condition / f"{item.item_id}-s{sample}.mp4"
                save_video_mp4(frames, path, fps=2.5)
                write_png(path.with_suffix(".png"), np.concatenate(list(frames), axis=1))
                row["video"] = str(path.relative_to(out))
                row["strip"] = str(path.with_suffix(".png").relative_to(out))
            rows.append(row)
        summaries[condition] = {
            **summarize(rows),
            "model": model,
            "text": text,
            "seconds": time.perf_counter() - t0,
        }
        records.extend(rows)
        logger.info(
            "%s: judged success %.3f [%.3f, %.3f] over %d videos",
            condition,
            summaries[condition]["rate"],
            summaries[condition]["ci95_low"],
            summaries[condition]["ci95_high"],
            len(rows),
        )
    return summaries, records


# ------------------------------------------------------------------------- closed loop
def load_idm(cfg: EvalConfig) -> Any:
    path = model_path(cfg, "idm")
    if path is not None:
        return InverseDynamicsPolicy.from_pretrained(path, device=resolve_device(cfg.device))

    logger.warning("no IDM path: closed loop uses the RANDOM IDM test double (debug only)")
    robot = RobotDescription.from_yaml(default_robot_path())
    return TinyRandomInverseDynamics(robot.joint_names, robot.home_rad)


def evaluate_closed_loop(
    cfg: EvalConfig, items: list[TaskItem]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:

    cl = cfg.closed_loop
    sim_items = [it for it in items if it.seed is not None][: cl.num_episodes]
    if not sim_items:
        raise ValueError("closed-loop evaluation needs simulator items (with a seed)")
    env = make_env(cl.image_size_px)
    idm = load_idm(cfg) if any(c != "expert" for c in cl.conditions) else None
    out = Path(cfg.output_dir)
    summaries, records = {}, []
    try:
        for condition in cl.conditions:
            model = None
            if condition != "expert":
                name = CONDITIONS[condition][0]
                model = VideoWorldModel(
                    load_video_pipeline(model_path(cfg, name), cfg.model_preset, cfg.device)
                )
            rows = []
            for k, item in enumerate(sim_items):
                if model is None:
                    result = run_expert(env, item, cl)
                else:
                    result = run_stack(
                        env, item, condition, model, idm, cl, seed=item_seed(item.item_id, cfg.seed)
                    )
                row = result.to_record()
                if k < cfg.num_sample_videos:
                    vdir = out / "closed_loop_videos" / condition
                    save_video_mp4(result.executed, vdir / f"{item.item_id}-executed.mp4", 10.0)
                    row["executed_video"] = str(
                        (vdir / f"{item.item_id}-executed.mp4").relative_to(out)
                    )
                    if result.imagined:
                        save_video_mp4(
                            result.imagined[0], vdir / f"{item.item_id}-imagined.mp4", 2.5
                        )
                        row["imagined_video"] = str(
                            (vdir / f"{item.item_id}-imagined.mp4").relative_to(out)
                        )
                rows.append(row)
            wins = sum(r["success"] for r in rows)
            summaries[condition] = {
                **success_rate(wins, len(rows)).to_dict(),
                "mean_steps": float(np.mean([r["steps"] for r in rows])),
                "mean_replans": float(np.mean([r["replans"] for r in rows])),
            }
            records.extend(rows)
            logger.info("closed loop %s: %d/%d", condition, wins, len(rows))
    finally:
        env.close()
    return summaries, records


# ----------------------------------------------------------------------------- checks
def outcomes_by_item(rows: list[dict[str, Any]], condition: str) -> dict[str, list[bool]]:
    """item id -> the condition's per-sample successes, in sample order."""
    out: dict[str, list[tuple[int, bool]]] = {}
    for r in rows:
        if r["condition"] == condition:
            out.setdefault(r["item_id"], []).append((r["sample"], bool(r["success"])))
    return {k: [ok for _, ok in sorted(v)] for k, v in out.items()}


def done_when_checks(
    world: dict[str, Any], closed: dict[str, Any], world_rows: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The issue's acceptance criteria, computed (None where a condition was not run).

    Differences carry Newcombe's interval (independent samples) and, given ``world_rows``,
    the paired item-bootstrap interval, the right one here: conditions share items and
    sampling seeds.
    """

    def paired(a: str, b: str) -> list[float] | None:
        if not world_rows:
            return None
        _, lo, hi = paired_difference(
            outcomes_by_item(world_rows, a), outcomes_by_item(world_rows, b)
        )
        return [lo, hi]

    def rate(summary: dict[str, Any]) -> Rate:
        return Rate(
            summary["successes"],
            summary["n"],
            summary["rate"],
            summary["ci95_low"],
            summary["ci95_high"],
        )

    checks: dict[str, Any] = {}
    if "executor_rl" in world and "demonstrator_prompt" in world:
        d, lo, hi = difference_interval(
            rate(world["executor_rl"]), rate(world["demonstrator_prompt"])
        )
        checks["executor_minus_demonstrator_prompt"] = {
            "diff": d,
            "ci95": [lo, hi],
            "paired_ci95": paired("executor_rl", "demonstrator_prompt"),
            "passes_20_points": d >= 0.20,
        }
    if "executor_rl" in world and "executor_distilled" in world:
        d, lo, hi = difference_interval(
            rate(world["executor_rl"]), rate(world["executor_distilled"])
        )
        checks["rl_minus_distilled"] = {
            "diff": d,
            "ci95": [lo, hi],
            "paired_ci95": paired("executor_rl", "executor_distilled"),
            "rl_improves": d > 0,
        }
    if "expert" in closed:
        expert = closed["expert"]["rate"]
        best = max((v["rate"] for k, v in closed.items() if k.startswith("executor")), default=None)
        if best is not None:
            ratio = best / expert if expert > 0 else None
            checks["closed_loop_vs_expert"] = {
                "executor_rate": best,
                "expert_rate": expert,
                "ratio": ratio,
                "passes_50_percent": ratio is not None and ratio >= 0.5,
            }
    return checks


def run_evaluate(cfg: EvalConfig) -> dict[str, Any]:
    out = Path(cfg.output_dir)
    save_config_json(cfg, out / "config.json")
    items = load_items(cfg.items, limit=cfg.limit_items)
    judge = make_judge(cfg.judge)
    world, world_rows = evaluate_worldtasks(cfg, items, judge)
    closed, closed_rows = {}, []
    if cfg.closed_loop.enabled:
        closed, closed_rows = evaluate_closed_loop(cfg, items)
    results = {
        "items": len(items),
        "samples_per_item": cfg.samples_per_item,
        "judge": cfg.judge.kind,
        "worldtasks": world,
        "closed_loop": closed,
        "done_when": done_when_checks(world, closed, world_rows),
    }
    write_bytes_atomic(
        out / "worldtasks.jsonl", "".join(json.dumps(r) + "\n" for r in world_rows).encode()
    )
    write_bytes_atomic(
        out / "closed_loop.jsonl", "".join(json.dumps(r) + "\n" for r in closed_rows).encode()
    )
    write_bytes_atomic(out / "results.json", json.dumps(results, indent=2).encode())
    return results


@cli_main("executor-evaluate")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(EvalConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    results = run_evaluate(cfg)
    print(
        json.dumps(
            {
                "worldtasks": {k: round(v["rate"], 3) for k, v in results["worldtasks"].items()},
                "closed_loop": {k: round(v["rate"], 3) for k, v in results["closed_loop"].items()},
                "done_when": results["done_when"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
