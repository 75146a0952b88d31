"""Side-by-side frames of several video models on the same benchmark items: per item and
model, the imagined video (one ODE sample from the short prompt, the item's seed) over what
the arm did when that video was executed in the simulator, with the execution-aware judge's
scores and the executed verdict. It shows why one Executor executes where another does not.
Each row also says how soon the video draws the task done: ``goal_frame``, the first frame
with the task cube drawn on the goal (held or not), and ``done_frame``, the first by which
the video already passes the judge's task test (at rest on the goal, the arm gone); null
when it never does.
``--expert`` adds the scripted expert's clip of each item (as the video models' training
clips are cut) as a reference row named ``expert``.

    .venv/bin/python benchmarks/side_by_side_models.py \\
        --models anchor=checkpoints/executor_anchor_sim,rl=outputs/grpo_gpu3/rl_anchor/pipeline \\
        --first_seed 1400000 --items 4 --families push \\
        --output checkpoints/executor_sim/results/rl_gpu3/side_by_side_push.png

The items are the benchmark split's (``--split``, ``--first_seed``, as
``bench_goal_runner.py``), the first ``--items`` of ``--families``. Writes the PNG atomically
and prints one JSON line per (item, model) with its verdicts, then a per-model summary
(``--strip_items`` items are drawn, all ``--items`` measured).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from executor_core.config_cli import OneLineArgumentParser, cli_main, parse_named_paths
from executor_core.frame_stats import high_freq_energy
from executor_core.frames import resample_frames
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.closed_loop import make_env
from self_distillation.demo_generation import item_seed
from self_distillation.executed_success import ExecutedSuccessConfig, SimStart, execute_videos
from self_distillation.judges.execution_aware import ExecutionAwareJudge
from self_distillation.judging import episode_for_item
from self_distillation.sft_baseline import expert_clip
from self_distillation.stats import mean_interval
from self_distillation.task_items import TaskItem, check_task_families, items_of_families, write_png
from self_distillation.video_models import load_video_pipeline
from self_distillation.worldtasks_report import strip_image
from self_distillation.worldtasks_splits import SPLITS, SplitSpec, build_split
from video_models.configuration_executor import MODEL_PRESETS

logger = logging.getLogger(__name__)
_SCAN_ITEMS_PER_ITEM = 6  # split items scanned per item asked for, to find the families


@dataclass(frozen=True)
class SideBySideConfig:
    models: dict[str, Path]  # name -> saved video pipeline
    output: Path
    split: str = "seen"
    first_seed: int = 1_400_000  # the validation range: never the seeds a report uses
    items: int = 4
    families: tuple[str, ...] = ()  # empty: any family
    idm: Path = Path("checkpoints/idm_sim")
    model_preset: str = "sim"
    num_frames: int = 8  # frames per row, evenly spread over the video
    strip_items: int = 3  # items drawn in the PNG (all ``items`` are measured)
    expert: bool = False  # add the scripted expert's clip of each item, as row "expert"

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("models must name at least one name=path pair")
        if self.expert and "expert" in self.models:
            raise ValueError("with expert=true no model may be named 'expert'")
        missing = [f"{n}={p}" for n, p in self.models.items() if not Path(p).is_dir()]
        if missing:
            raise ValueError(f"models: no such pipeline folder: {', '.join(missing)}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not 1 <= self.items <= 64:
            raise ValueError(f"items must be in [1, 64], got {self.items!r}")
        if not 1 <= self.strip_items <= min(self.items, 8):
            raise ValueError(f"strip_items must be in [1, min(items, 8)], got {self.strip_items!r}")
        if not 2 <= self.num_frames <= 32:
            raise ValueError(f"num_frames must be in [2, 32], got {self.num_frames!r}")
        check_task_families(self.families)
        if self.output.suffix != ".png":
            raise ValueError(f"output must be a .png file, got {str(self.output)!r}")


def pick_items(cfg: SideBySideConfig) -> list[TaskItem]:
    scanned = build_split(SplitSpec(cfg.split, cfg.items * _SCAN_ITEMS_PER_ITEM, cfg.first_seed))
    kept = items_of_families(scanned, cfg.families)
    if len(kept) < cfg.items:
        raise ValueError(
            f"only {len(kept)} items of {cfg.families!r} among the first {len(scanned)} of "
            f"split {cfg.split!r} from seed {cfg.first_seed}; ask for fewer items"
        )
    return kept[: cfg.items]


def imagine_and_execute(
    pipe, items: list[TaskItem], idm: InverseDynamicsPolicy
) -> list[tuple[np.ndarray, np.ndarray, dict]]:
    """Per item: (imagined frames, executed frames, verdict row)."""
    videos = pipe(
        [it.image_rgb for it in items],
        [it.prompt for it in items],
        seed=[item_seed(it.item_id, 0) for it in items],
    ).frames
    executed = execute_videos(
        videos,
        [SimStart.from_item(it) for it in items],
        ExecutedSuccessConfig(keep_frames=True),
        idm,
    )
    judge = ExecutionAwareJudge()
    out = []
    for video, item, result in zip(videos, items, executed.results, strict=True):
        episode = episode_for_item(item)
        verdict = judge.judge(video, episode)
        row = {
            **goal_frames(judge, np.asarray(video), episode),
            "high_freq_energy": round(high_freq_energy(np.asarray(video)[1:]), 3),
            "high_freq_energy_first_frame": round(high_freq_energy(np.asarray(video)[:1]), 3),
            **verdict.scores,
            "judged_success": bool(verdict.success),
            "executed_success": bool(result.success),
            "closed_loop_success": "n/a",
        }
        out.append((np.asarray(video), result.executed, row))
    return out


def expert_rows(
    items: list[TaskItem], model_preset: str
) -> list[tuple[np.ndarray, np.ndarray, dict]]:
    """Per item, the scripted expert's clip (frames and stride of ``model_preset``) as
    (imagined, executed, verdict row): the reference a video model's timing is read
    against."""
    model = MODEL_PRESETS[model_preset]
    judge = ExecutionAwareJudge()
    env = make_env(items[0].image_rgb.shape[0])
    out = []
    try:
        for item in items:
            (clip,), _, success = expert_clip(env, item, model.num_frames, model.frame_stride)
            episode = episode_for_item(item)
            verdict = judge.judge(clip, episode)
            row = {
                **goal_frames(judge, clip, episode),
                "high_freq_energy": round(high_freq_energy(clip[1:]), 3),
                "high_freq_energy_first_frame": round(high_freq_energy(clip[:1]), 3),
                **verdict.scores,
                "judged_success": bool(verdict.success),
                "executed_success": success,
                "closed_loop_success": "n/a",
            }
            out.append((clip, clip, row))
    finally:
        env.close()
    return out


def goal_frames(
    judge: ExecutionAwareJudge, video: np.ndarray, episode: dict
) -> dict[str, int | None]:
    """How soon a video draws the task done, from the judge's task score of each prefix
    ``video[: k + 1]``: ``goal_frame``, the first k with the task cube on the goal in its
    last frames (score > 0, held or not), and ``done_frame``, the first k that passes the
    task test (resting there, the arm gone). None: never."""
    out: dict[str, int | None] = {"goal_frame": None, "done_frame": None}
    for k in range(2, len(video)):  # the judge needs 3 frames
        task = judge.judge(video[: k + 1], episode).scores["task"]
        if task > 0 and out["goal_frame"] is None:
            out["goal_frame"] = k
        if task >= judge.config.task_pass:
            out["done_frame"] = k
            break
    return out


def summarize(records: list[dict]) -> dict[str, dict]:
    """Per model: items, open-loop executed and judged counts, mean high-frequency energy,
    and (after the first model) its paired difference from the first model's, item by item
    (mean, 95 % bootstrap interval)."""
    out: dict[str, dict] = {}
    names = list(dict.fromkeys(r["model"] for r in records))
    first = {r["item"]: r["high_freq_energy"] for r in records if r["model"] == names[0]}
    for name in names:
        rows = [r for r in records if r["model"] == name]
        out[name] = {
            "items": len(rows),
            "executed": sum(r["executed_success"] for r in rows),
            "judged": sum(r["judged_success"] for r in rows),
            "high_freq_energy": round(float(np.mean([r["high_freq_energy"] for r in rows])), 3),
            "high_freq_energy_first_frame": round(
                float(np.mean([r["high_freq_energy_first_frame"] for r in rows])), 3
            ),
            # videos that draw the cube on the goal / the task done, and the median frame
            # at which they first do
            "goal_drawn": sum(r["goal_frame"] is not None for r in rows),
            "goal_frame_median": _median([r["goal_frame"] for r in rows]),
            "done_drawn": sum(r["done_frame"] is not None for r in rows),
            "done_frame_median": _median([r["done_frame"] for r in rows]),
        }
        if name != names[0]:
            diff = mean_interval([r["high_freq_energy"] - first[r["item"]] for r in rows])
            out[name][f"high_freq_energy_minus_{names[0]}"] = [round(v, 3) for v in diff]
    return out


def _median(values: list[int | None]) -> float | None:
    drawn = [v for v in values if v is not None]
    return float(np.median(drawn)) if drawn else None


def run(cfg: SideBySideConfig) -> list[dict]:
    items = pick_items(cfg)
    idm = InverseDynamicsPolicy.from_pretrained(cfg.idm, device="cpu")
    per_model = {
        name: imagine_and_execute(load_video_pipeline(path, cfg.model_preset, "cpu"), items, idm)
        for name, path in cfg.models.items()
    }
    if cfg.expert:
        per_model["expert"] = expert_rows(items, cfg.model_preset)
    blocks, records = [], []
    for k, item in enumerate(items):
        for name, results in per_model.items():
            imagined, executed, row = results[k]
            if k < cfg.strip_items:
                title = f"{name} | {item.prompt}"
                frames = resample_frames(imagined, cfg.num_frames)
                blocks.append(strip_image(frames, executed, title, row))
            records.append({"item": item.item_id, "model": name, "prompt": item.prompt, **row})
    width = max(b.shape[1] for b in blocks)
    padded = [
        np.pad(b, ((0, 6), (0, width - b.shape[1]), (0, 0)), constant_values=255) for b in blocks
    ]
    write_png(cfg.output, np.concatenate(padded))
    return records


@cli_main("side_by_side_models")
def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="side_by_side_models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True, help="name=pipeline,name=pipeline,...")
    parser.add_argument("--output", type=Path, required=True, help="the .png to write")
    parser.add_argument("--split", default="seen")
    parser.add_argument("--first_seed", type=int, default=1_400_000)
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--families", default="", help="e.g. push,pick_place (default: any)")
    parser.add_argument("--idm", type=Path, default=Path("checkpoints/idm_sim"))
    parser.add_argument("--num_frames", type=int, default=8, help="frames per row")
    parser.add_argument("--strip_items", type=int, default=3, help="items drawn in the PNG")
    parser.add_argument("--expert", action="store_true", help="add the expert's clips")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cfg = SideBySideConfig(
        models=parse_named_paths(args.models, "--models"),
        output=args.output,
        split=args.split,
        first_seed=args.first_seed,
        items=args.items,
        families=tuple(f for f in args.families.split(",") if f),
        idm=args.idm,
        num_frames=args.num_frames,
        strip_items=args.strip_items,
        expert=args.expert,
    )
    records = run(cfg)
    for record in records:
        print(json.dumps(record, sort_keys=True))
    print(json.dumps({"output": str(cfg.output), "summary": summarize(records)}))


if __name__ == "__main__":
    sys.exit(main())
