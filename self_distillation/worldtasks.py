"""``executor-worldtasks``: the fixed sim benchmark whose headline is what the arm achieves.

In the spirit of WorldTasks-Bench, on three held-out splits (:mod:`worldtasks_splits`:
seen tasks in new layouts, novel compositions held out of every training stage, novel
phrasings). For every condition and split, per item:

* the video the condition imagines from the scene image (one sample, seed from the item),
  scored by the execution-aware judge on all frames: ``task``, ``agent``, ``consistency``
  in [0, 1], judged success = all three pass;
* **executed success**: that same video executed in the simulator from the same initial
  state by the IDM through the goal runner the robot uses, one segment, no replanning
  (:mod:`executed_success`); the task predicate decides;
* **closed-loop success**: the full stack through the same runner with the robot's
  replanning (:mod:`closed_loop`), per task family.

The expert has no imagined video: it runs its scripted plan closed loop; its executed
success is that run's (no replanning needed) and its judge scores are those of its own
camera frames, resampled to the models' frame count (the judge's reference point).

Rates carry Wilson 95 % intervals, mean scores an item-bootstrap interval, and differences
between conditions a paired item-bootstrap interval (every condition sees the same items
and seeds). ``benchmark.json`` follows the contract of issue 13; the per-item records are
kept per (split, condition) under ``records/`` and reused when the run is resumed, so a
long CPU run can be stopped and continued. ``report.md`` with plots and side-by-side strips
of imagined and executed frames comes from :mod:`worldtasks_report`.

    executor-worldtasks --preset sim --output_dir outputs/worldtasks
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from executor_core.atomic_io import write_bytes_atomic, write_json_atomic
from executor_core.config_cli import cli_main, configure_cli_logging, parse_config, save_config_json
from executor_core.frames import resample_frames
from executor_core.policy import InverseDynamics
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.closed_loop import ClosedLoopConfig, make_env, run_expert, run_stack
from self_distillation.demo_generation import item_seed
from self_distillation.executed_success import (
    ExecutedSuccessConfig,
    SimStart,
    execute_videos,
)
from self_distillation.judges.execution_aware import ExecutionAwareJudge
from self_distillation.judging import episode_for_item
from self_distillation.stats import mean_interval, paired_difference, success_rate
from self_distillation.task_items import TaskItem, save_items
from self_distillation.video_models import load_video_pipeline, resolve_device
from self_distillation.worldtasks_report import write_report, write_strip
from self_distillation.worldtasks_splits import (
    SPLIT_FIRST_SEEDS,
    SPLITS,
    SplitSpec,
    build_split,
    item_family,
)
from video_models.world_model import VideoWorldModel

logger = logging.getLogger(__name__)

# condition -> (model, text given); the expert has no model
CONDITIONS: dict[str, tuple[str, str] | None] = {
    "expert": None,
    "demonstrator_solution": ("demonstrator", "solution"),
    "demonstrator_prompt": ("demonstrator", "prompt"),
    "executor_sft": ("executor_sft", "prompt"),
    "executor_distilled": ("executor_distilled", "prompt"),
    "executor_rl": ("executor_rl", "prompt"),
    "executor_anchor": ("executor_anchor", "prompt"),
}
METRICS: tuple[str, ...] = ("judged_success", "executed_success", "closed_loop_success")
SCORES: tuple[str, ...] = ("task", "agent", "consistency")


@dataclass(frozen=True)
class WorldTasksModels:
    demonstrator: Path = Path("checkpoints/demonstrator_sim")
    executor_sft: Path = Path("checkpoints/executor_sft_sim")
    executor_distilled: Path = Path("checkpoints/executor_sim")
    executor_rl: Path = Path("checkpoints/executor_rl_sim")
    # the distilled Executor after on-policy distillation from the Demonstrator (the bringup's)
    executor_anchor: Path = Path("checkpoints/executor_anchor_sim")
    idm: Path = Path("checkpoints/idm_sim")


@dataclass
class WorldTasksConfig:
    output_dir: Path = Path("outputs/worldtasks")
    splits: tuple[str, ...] = SPLITS
    items_per_split: int = 64
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    models: WorldTasksModels = field(default_factory=WorldTasksModels)
    model_preset: str = "sim"
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    image_size_px: int = 64
    # the closed loop: the robot's runner settings (no paraphrase: the split sets the text)
    closed_loop: ClosedLoopConfig = field(
        default_factory=lambda: ClosedLoopConfig(paraphrase=False)
    )
    executed_workers: int = 1  # process pool of executed success
    pairs: tuple[str, ...] = (
        "executor_anchor - executor_distilled",
        "executor_rl - executor_distilled",
        "executor_distilled - executor_sft",
        "executor_distilled - demonstrator_prompt",
        "demonstrator_solution - executor_distilled",
        "expert - executor_distilled",
    )
    num_strips: int = 3  # side-by-side strips per (split, condition)
    # the judge's probe pass rates (benchmarks/bench_judge_probes.py), quoted in the JSON
    probes: Path | None = Path("checkpoints/executor_sim/results/judge_probes_heldout256.json")
    command: str = ""  # how this run was started, recorded in benchmark.json
    # only summarise the records already under output_dir/records (a (split, condition)
    # without them is listed in benchmark.json's "missing", not run)
    records_only: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.splits) - set(SPLITS))
        if unknown:
            raise ValueError(f"unknown splits {unknown!r}; known {list(SPLITS)}")
        unknown = sorted(set(self.conditions) - set(CONDITIONS))
        if unknown:
            raise ValueError(f"unknown conditions {unknown!r}; known {list(CONDITIONS)}")
        if self.items_per_split <= 0 or self.batch_size <= 0 or self.num_strips < 0:
            raise ValueError(
                f"need items_per_split > 0, batch_size > 0, num_strips >= 0; got "
                f"{self.items_per_split!r}, {self.batch_size!r}, {self.num_strips!r}"
            )
        if self.executed_workers < 1:
            raise ValueError(f"executed_workers must be >= 1, got {self.executed_workers!r}")
        for pair in self.pairs:
            parse_pair(pair)


def parse_pair(pair: str) -> tuple[str, str]:
    parts = [p.strip() for p in pair.split(" - ")]
    if len(parts) != 2 or any(p not in CONDITIONS for p in parts):
        raise ValueError(f"a pair is 'A - B' with A, B in {list(CONDITIONS)}; got {pair!r}")
    return parts[0], parts[1]


PRESETS: dict[str, WorldTasksConfig] = {
    "debug": WorldTasksConfig(
        output_dir=Path("outputs/worldtasks_debug"),
        items_per_split=2,
        conditions=("expert", "executor_distilled"),
        batch_size=2,
        closed_loop=ClosedLoopConfig(paraphrase=False, max_replans=1, max_steps=40),
        pairs=("expert - executor_distilled",),
        num_strips=1,
        probes=None,
    ),
    "sim": WorldTasksConfig(),
}


# ------------------------------------------------------------------------ per condition
def imagine(pipe: Any, items: list[TaskItem], text: str, cfg: WorldTasksConfig) -> list:
    """One video (T, S, S, 3) uint8 per item, seeded by the item."""
    videos: list[np.ndarray] = []
    for start in range(0, len(items), cfg.batch_size):
        batch = items[start : start + cfg.batch_size]
        texts = [it.proposal.solution_text if text == "solution" else it.prompt for it in batch]
        seeds = [item_seed(it.item_id, cfg.seed) for it in batch]
        videos.extend(pipe([it.image_rgb for it in batch], texts, seed=seeds).frames)
    return videos


def judge_row(judge: ExecutionAwareJudge, video: np.ndarray, item: TaskItem) -> dict[str, Any]:
    verdict = judge.judge(video, episode_for_item(item))
    return {
        **verdict.scores,
        "judged_success": bool(verdict.success),
        "judge_reason": verdict.reason,
    }


def run_expert_condition(
    items: list[TaskItem], cfg: WorldTasksConfig, num_frames: int
) -> tuple[list[dict[str, Any]], list[tuple[np.ndarray, np.ndarray]]]:
    env = make_env(cfg.image_size_px)
    judge = ExecutionAwareJudge()
    rows, strips = [], []
    try:
        for item in items:
            result = run_expert(env, item, cfg.closed_loop)
            video = resample_frames(result.executed, num_frames)
            rows.append(
                {
                    **judge_row(judge, video, item),
                    "executed_success": bool(result.success),
                    "closed_loop_success": bool(result.success),
                    "closed_loop_steps": int(result.steps),
                    "replans": 0,
                }
            )
            if len(strips) < cfg.num_strips:
                strips.append((video, result.executed))
    finally:
        env.close()
    return rows, strips


def run_model_condition(
    condition: str,
    items: list[TaskItem],
    cfg: WorldTasksConfig,
    idm: InverseDynamics,
) -> tuple[list[dict[str, Any]], list[tuple[np.ndarray, np.ndarray]]]:
    spec = CONDITIONS[condition]
    assert spec is not None
    model_name, text = spec
    pipe = load_video_pipeline(getattr(cfg.models, model_name), cfg.model_preset, cfg.device)
    t0 = time.perf_counter()
    videos = imagine(pipe, items, text, cfg)
    imagine_s = time.perf_counter() - t0
    judge = ExecutionAwareJudge()
    rows = [judge_row(judge, v, it) for v, it in zip(videos, items, strict=True)]
    executed = execute_videos(
        videos,
        [SimStart.from_item(it) for it in items],
        ExecutedSuccessConfig(
            workers=cfg.executed_workers,
            image_size_px=cfg.image_size_px,
            max_steps=cfg.closed_loop.max_steps,
            keep_frames=True,
        ),
        idm=idm,
    )
    strips = [(v, r.executed) for v, r in zip(videos, executed.results, strict=True)][
        : cfg.num_strips
    ]
    model = VideoWorldModel(pipe)
    env = make_env(cfg.image_size_px)
    try:
        for row, item, ex in zip(rows, items, executed.results, strict=True):
            seed = item_seed(item.item_id, cfg.seed)
            result = run_stack(env, item, condition, model, idm, cfg.closed_loop, seed=seed)
            row.update(
                executed_success=bool(ex.success),
                executed_steps=int(ex.steps),
                closed_loop_success=bool(result.success),
                closed_loop_steps=int(result.steps),
                replans=int(result.replans),
            )
    finally:
        env.close()
    logger.info(
        "%s: imagined %d videos in %.1f s, executed %.2f s/video",
        condition,
        len(videos),
        imagine_s,
        executed.seconds_per_video,
    )
    return rows, strips


def record_path(cfg: WorldTasksConfig, split: str, condition: str) -> Path:
    return Path(cfg.output_dir) / "records" / split / f"{condition}.jsonl"


def condition_rows(
    split: str,
    condition: str,
    items: list[TaskItem],
    cfg: WorldTasksConfig,
    idm: InverseDynamics | None,
    num_frames: int,
) -> list[dict[str, Any]]:
    """The per-item records of one (split, condition), reused from disk when present."""
    path = record_path(cfg, split, condition)
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if [r["item_id"] for r in rows] == [it.item_id for it in items]:
            logger.info("reusing %s", path)
            return rows
        raise ValueError(f"{path} holds other items than this split; use another output_dir")
    t0 = time.perf_counter()
    if condition == "expert":
        rows, strips = run_expert_condition(items, cfg, num_frames)
    else:
        assert idm is not None
        rows, strips = run_model_condition(condition, items, cfg, idm)
    for row, item in zip(rows, items, strict=True):
        row.update(
            item_id=item.item_id,
            seed=item.seed,
            family=item_family(item),
            prompt=item.prompt,
        )
    for k, (imagined, executed) in enumerate(strips):
        write_strip(
            Path(cfg.output_dir) / "strips" / split / f"{condition}-{items[k].item_id}.png",
            imagined,
            executed,
            f"{condition} | {items[k].prompt}",
            rows[k],
        )
    write_bytes_atomic(path, "".join(json.dumps(r) + "\n" for r in rows).encode())
    logger.info(
        "%s / %s: executed %d/%d, closed loop %d/%d (%.0f s)",
        split,
        condition,
        sum(r["executed_success"] for r in rows),
        len(rows),
        sum(r["closed_loop_success"] for r in rows),
        len(rows),
        time.perf_counter() - t0,
    )
    return rows


# ----------------------------------------------------------------------------- summary
def summarize_condition(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    out: dict[str, Any] = {"n": n}
    ci: dict[str, Any] = {}
    for name in SCORES:
        mean, low, high = mean_interval([r[name] for r in rows])
        out[name] = mean
        ci[name] = [low, high]
    for metric in METRICS:
        rate = success_rate(sum(bool(r[metric]) for r in rows), n)
        out[metric] = rate.rate
        ci[metric] = [rate.low, rate.high]
    families = sorted({r["family"] for r in rows})
    # where each family is lost: the imagined end state (task score), the judged and the
    # executed video, or the closed loop
    out["by_family"] = {f: family_rates([r for r in rows if r["family"] == f]) for f in families}
    out["judge_execution_agreement"] = agreement(rows)
    out["closed_loop_mean_steps"] = float(np.mean([r["closed_loop_steps"] for r in rows]))
    out["ci95"] = ci
    return out


def family_rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One family's mean task score and its judged, executed and closed-loop rates."""
    out: dict[str, Any] = {"n": len(rows), "task": float(np.mean([r["task"] for r in rows]))}
    for metric in METRICS:
        out[metric] = float(np.mean([bool(r[metric]) for r in rows]))
    return out


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How the judge's verdict on a video matches executing it."""
    judged = np.array([bool(r["judged_success"]) for r in rows])
    executed = np.array([bool(r["executed_success"]) for r in rows])
    return {
        "agreement": float(np.mean(judged == executed)) if len(rows) else 0.0,
        "judged": int(judged.sum()),
        "executed": int(executed.sum()),
        "judged_and_executed": int((judged & executed).sum()),
        # P(executes | judged success): what a judge-selected dataset holds
        "precision": float((judged & executed).sum() / judged.sum()) if judged.any() else None,
        # P(judged success | executes): what the judge lets through of what works
        "recall": float((judged & executed).sum() / executed.sum()) if executed.any() else None,
    }


def paired_table(
    records: dict[str, dict[str, list[dict[str, Any]]]], pairs: tuple[str, ...]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        a, b = parse_pair(pair)
        for split, by_condition in records.items():
            if a not in by_condition or b not in by_condition:
                continue
            table = {}
            for metric in METRICS:
                diff, low, high = paired_difference(
                    {r["item_id"]: [bool(r[metric])] for r in by_condition[a]},
                    {r["item_id"]: [bool(r[metric])] for r in by_condition[b]},
                )
                table[metric] = {"diff": diff, "ci95": [low, high]}
            out.setdefault(f"{a} - {b}", {})[split] = table
    return out


def probe_rates(path: Path | None) -> dict[str, float]:
    """{probe kind: pass rate} of the execution-aware judge from the probe benchmark."""
    if path is None:
        return {}
    data = json.loads(Path(path).read_text())
    if "judge_probes" not in data:
        raise ValueError(f"{path} is not a bench_judge_probes.py result (no 'judge_probes')")
    return {kind: float(rate) for kind, rate in data["judge_probes"].items()}


# -------------------------------------------------------------------------------- run
def load_idm(cfg: WorldTasksConfig) -> InverseDynamics:
    return InverseDynamicsPolicy.from_pretrained(cfg.models.idm, device=resolve_device(cfg.device))


def run_worldtasks(cfg: WorldTasksConfig) -> dict[str, Any]:
    out = Path(cfg.output_dir)
    save_config_json(cfg, out / "config.json")
    needs_idm = any(c != "expert" for c in cfg.conditions) and not cfg.records_only
    idm = load_idm(cfg) if needs_idm else None
    num_frames = 16
    missing: list[str] = []
    records: dict[str, dict[str, list[dict[str, Any]]]] = {}
    summary: dict[str, Any] = {}
    t0 = time.perf_counter()
    for split in cfg.splits:
        items = build_split(
            SplitSpec(split, cfg.items_per_split, SPLIT_FIRST_SEEDS[split]), cfg.image_size_px
        )
        save_items(items, out / "items" / split)
        records[split], summary[split] = {}, {}
        for condition in cfg.conditions:
            if cfg.records_only and not record_path(cfg, split, condition).is_file():
                missing.append(f"{split}/{condition}")
                continue
            rows = condition_rows(split, condition, items, cfg, idm, num_frames)
            records[split][condition] = rows
            summary[split][condition] = summarize_condition(rows)
    results = {
        "splits": summary,
        "paired": paired_table(records, cfg.pairs),
        "judge_probes": probe_rates(cfg.probes),
        "command": cfg.command,
        "judge": "execution_aware",
        "wall_s": time.perf_counter() - t0,
        "missing": missing,
    }
    write_json_atomic(out / "benchmark.json", results)
    write_report(out, results, cfg.splits, cfg.conditions)
    return results


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """{split: {condition: executed / closed-loop success}}: what the CLI prints."""
    return {
        split: {
            c: {m: round(v[m], 3) for m in ("executed_success", "closed_loop_success")}
            for c, v in by_condition.items()
        }
        for split, by_condition in results["splits"].items()
    }


@cli_main("executor-worldtasks")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging("%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    cfg = parse_config(WorldTasksConfig, args, PRESETS)
    cfg = replace(cfg, command=cfg.command or "executor-worldtasks " + " ".join(args))
    results = run_worldtasks(cfg)
    print(json.dumps(headline(results), indent=2))


if __name__ == "__main__":
    sys.exit(main())
