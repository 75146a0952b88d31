"""``executor-generate-demos``: items -> Demonstrator videos -> a LeRobotDataset.

1. Each process (``accelerate launch`` shards the items by process index) renders the
   Demonstrator video of each of its items, conditioned on the detailed solution, and
   writes it to ``clips/<item_id>.npy`` atomically. An item whose clip exists is skipped,
   so a killed run resumes where it stopped and a finished run is a no-op (idempotent).
2. The main process assembles all clips, in item order, into a LeRobotDataset at
   ``dataset/`` (built in a temporary folder, then renamed): the video feature
   ``observation.images.scene``, ``task`` = the short prompt, and
   ``meta/executor_episodes.jsonl`` with the solution and proposal metadata.

Generated clips have one frame per ``frame_stride`` control steps; the dataset keeps the
10 Hz contract by holding each frame ``frame_stride`` steps, so the video models, which
read every ``frame_stride``-th frame, get exactly the generated frames back. No state or
action features are written: an imagined video has none.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from executor_core.atomic_io import atomic_path, remove_leftovers, write_bytes_atomic
from executor_core.config_cli import cli_main, configure_cli_logging, parse_config, save_config_json
from executor_core.video_io import keep_thread_scheduling
from self_distillation.judges.programmatic import ProgrammaticJudge
from self_distillation.judging import episode_for_item
from self_distillation.task_items import TaskItem, load_items, write_jsonl_atomic
from self_distillation.video_models import load_video_pipeline

logger = logging.getLogger(__name__)

DATASET_FPS = 10
VIDEO_KEY = "observation.images.scene"


@dataclass
class DemoGenConfig:
    items: Path = Path("outputs/method_sim/proposals")  # folder with items.jsonl (executor-propose)
    output_dir: Path = Path("outputs/method_sim/demos")
    demonstrator: Path | None = None  # saved pipeline; None = random model_preset (debug)
    model_preset: str = "sim"
    text: Literal["solution", "prompt"] = "solution"  # what the Demonstrator is given
    frame_stride: int = 4  # control steps per generated frame (docs/ARCHITECTURE.md)
    batch_size: int = 4
    seed: int = 0
    limit: int | None = None  # first N items only
    device: str = "auto"
    repo_id: str = "local/executor-demos"
    # h264 encodes any even size (SVT-AV1, lerobot's default, crashes below 32 px); crf 18
    # keeps the 64 px training videos close to lossless.
    video_codec: str = "h264"
    video_crf: int = 18
    # Judge every demo (programmatic judge; needs simulator scene records) and record the
    # verdict; distillation can then keep only the judged successes.
    judge_demos: bool = True

    def __post_init__(self) -> None:
        if self.text not in ("solution", "prompt"):
            raise ValueError(f"text must be 'solution' or 'prompt', got {self.text!r}")
        if self.batch_size <= 0 or self.frame_stride <= 0:
            raise ValueError(
                f"batch_size and frame_stride must be > 0, got "
                f"{self.batch_size!r}, {self.frame_stride!r}"
            )
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be > 0 or None, got {self.limit!r}")


PRESETS: dict[str, DemoGenConfig] = {
    "debug": DemoGenConfig(
        items=Path("outputs/method_debug/proposals"),
        output_dir=Path("outputs/method_debug/demos"),
        model_preset="debug",
        batch_size=2,
        limit=4,
    ),
    "sim": DemoGenConfig(
        items=Path("outputs/method_sim/proposals"),
        output_dir=Path("outputs/method_sim/demos"),
        demonstrator=Path("checkpoints/demonstrator_sim"),
        batch_size=16,
    ),
}


def item_seed(item_id: str, base_seed: int) -> int:
    """A stable per-item seed: the same item gets the same video in any shard or rerun."""
    return (zlib.crc32(item_id.encode()) + 7919 * base_seed) % (2**31)


def item_text(item: TaskItem, text: str) -> str:
    return item.proposal.solution_text if text == "solution" else item.proposal.task_prompt


def clip_path(out_dir: Path, item_id: str) -> Path:
    return Path(out_dir) / "clips" / f"{item_id}.npy"


def save_clip(path: Path, frames: np.ndarray) -> None:
    """(T, S, S, 3) uint8 -> .npy, atomically (a killed write leaves no clip behind)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(frames), allow_pickle=False)
    write_bytes_atomic(path, buf.getvalue())


def load_clip(path: Path) -> np.ndarray:
    frames = np.load(path, allow_pickle=False)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: expected (T, S, S, 3) uint8, got {frames.shape} {frames.dtype}")
    return frames


def generate_clips(
    cfg: DemoGenConfig, items: list[TaskItem], process_index: int = 0, num_processes: int = 1
) -> int:
    """Render this shard's missing clips; returns how many were rendered now."""
    mine = items[process_index::num_processes]
    todo = [it for it in mine if not clip_path(cfg.output_dir, it.item_id).is_file()]
    logger.info(
        "shard %d/%d: %d items, %d already done",
        process_index,
        num_processes,
        len(mine),
        len(mine) - len(todo),
    )
    if not todo:
        return 0
    pipe = load_video_pipeline(cfg.demonstrator, cfg.model_preset, cfg.device, cfg.seed)
    t0 = time.perf_counter()
    bar = tqdm(
        total=len(todo), desc=f"demos[{process_index}]", unit="video", disable=process_index != 0
    )
    for start in range(0, len(todo), cfg.batch_size):
        batch = todo[start : start + cfg.batch_size]
        frames = pipe(
            [it.image_rgb for it in batch],
            [item_text(it, cfg.text) for it in batch],
            seed=[item_seed(it.item_id, cfg.seed) for it in batch],
        ).frames  # (B, T, S, S, 3) uint8
        for it, clip in zip(batch, frames, strict=True):
            save_clip(clip_path(cfg.output_dir, it.item_id), clip)
        bar.update(len(batch))
    bar.close()
    elapsed_s = time.perf_counter() - t0
    logger.info(
        "shard %d: %d videos in %.1f s (%.2f videos/s)",
        process_index,
        len(todo),
        elapsed_s,
        len(todo) / max(elapsed_s, 1e-9),
    )
    return len(todo)


def episode_record(
    index: int, item: TaskItem, cfg: DemoGenConfig, verdict: Any | None = None
) -> dict:
    """The ``meta/executor_episodes.jsonl`` record of a generated demo. ``success`` is the
    judge's verdict (``success_source`` says so) or None when demos are not judged."""
    p = item.proposal
    return {
        "episode_index": index,
        "item_id": item.item_id,
        "task_family": p.metadata.get("task_family", "proposed"),
        "prompt": p.task_prompt,
        "paraphrases": list(p.metadata.get("paraphrases", [])),
        "solution": p.solution_text,
        "success_criterion": p.success_description,
        "success": None if verdict is None else bool(verdict.success),
        "success_source": None if verdict is None else "judge:programmatic",
        "judge_score": None if verdict is None else float(verdict.score),
        "object": p.metadata.get("object"),
        "target": p.metadata.get("target"),
        "seed": item.seed,
        "scene": item.scene,
        "proposal": p.to_dict(),
        "generated_by": str(cfg.demonstrator) if cfg.demonstrator else f"random:{cfg.model_preset}",
        "conditioned_on": cfg.text,
        "video_seed": item_seed(item.item_id, cfg.seed),
        "frame_stride": cfg.frame_stride,
    }


def assemble_dataset(cfg: DemoGenConfig, items: list[TaskItem]) -> Path:
    """All clips -> ``output_dir/dataset`` (LeRobotDataset v3), rebuilt atomically."""
    final = Path(cfg.output_dir) / "dataset"
    manifest = [it.item_id for it in items]
    done_marker = final / "meta" / "executor_items.json"
    if done_marker.is_file() and json.loads(done_marker.read_text()) == manifest:
        logger.info("dataset at %s is already complete", final)
        return final
    with atomic_path(final, directory=True) as tmp:
        tmp.rmdir()  # LeRobotDataset.create makes the folder itself
        records = _write_dataset(cfg, items, tmp)
        write_jsonl_atomic(tmp / "meta" / "executor_episodes.jsonl", records)
        write_bytes_atomic(tmp / "meta" / "executor_items.json", json.dumps(manifest).encode())
    if cfg.judge_demos:
        rate = float(np.mean([bool(r["success"]) for r in records]))
        logger.info("judged success of the demos: %.3f (%d episodes)", rate, len(records))
    logger.info("wrote %d episodes to %s", len(items), final)
    return final


def _write_dataset(cfg: DemoGenConfig, items: list[TaskItem], root: Path) -> list[dict]:
    """The clips as a LeRobotDataset at ``root``, each judged (``judge_demos``); returns
    the episode records."""
    from lerobot.configs.video import RGBEncoderConfig  # heavy, only here
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out = Path(cfg.output_dir)
    first = load_clip(clip_path(out, items[0].item_id))
    size = first.shape[1]
    ds = LeRobotDataset.create(
        repo_id=cfg.repo_id,
        fps=DATASET_FPS,
        root=root,
        use_videos=True,
        rgb_encoder=RGBEncoderConfig(vcodec=cfg.video_codec, crf=cfg.video_crf),
        features={
            VIDEO_KEY: {
                "dtype": "video",
                "shape": (size, size, 3),
                "names": ["height", "width", "channels"],
            }
        },
    )
    judge = ProgrammaticJudge() if cfg.judge_demos else None
    records = []
    for index, item in enumerate(tqdm(items, desc="dataset", unit="episode")):
        clip = load_clip(clip_path(out, item.item_id))
        verdict = None if judge is None else judge.judge(clip, episode_for_item(item))
        if clip.shape[1:] != first.shape[1:]:
            raise ValueError(f"clip {item.item_id} is {clip.shape}, others {first.shape}")
        # Hold each generated frame frame_stride steps; the last frame once.
        held = np.concatenate([np.repeat(clip[:-1], cfg.frame_stride, axis=0), clip[-1:]])
        for frame in held:
            ds.add_frame({VIDEO_KEY: frame, "task": item.proposal.task_prompt})
        with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
            ds.save_episode()
        records.append(episode_record(index, item, cfg, verdict))
    with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
        ds.finalize()
    return records


def run_generate(cfg: DemoGenConfig) -> Path:
    from accelerate import PartialState

    state = PartialState()
    items = load_items(cfg.items, limit=cfg.limit)
    if not items:
        raise ValueError(f"no items in {cfg.items}")
    if state.is_main_process:
        save_config_json(cfg, Path(cfg.output_dir) / "config.json")
        # What killed writes left (a clip, the dataset folder) goes before anyone writes.
        out = Path(cfg.output_dir)
        removed = remove_leftovers(out / "clips", "*") + remove_leftovers(out, "dataset")
        if removed:
            logger.info("removed %s, left by interrupted writes", [str(p) for p in removed])
    state.wait_for_everyone()
    generate_clips(cfg, items, state.process_index, state.num_processes)
    state.wait_for_everyone()
    final = Path(cfg.output_dir) / "dataset"
    if state.is_main_process:
        final = assemble_dataset(cfg, items)
    state.wait_for_everyone()
    return final


@cli_main("executor-generate-demos")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(DemoGenConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    print(run_generate(cfg))


if __name__ == "__main__":
    sys.exit(main())
