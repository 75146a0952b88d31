"""``executor-sim-generate``: scripted-expert episodes -> a LeRobotDataset v3.

Episode ``i`` uses seed ``seed + i`` and task family ``tasks[i % len(tasks)]``, so a run
is reproducible and balanced across families. Worker processes roll episodes out; each
finished episode is written atomically to a cache folder beside the dataset
(``<root>.cache/seed_<seed>.npz``). An interrupted run, started again with the same
command, skips the cached seeds, so nothing is duplicated or lost. When all episodes are
cached the parent writes the LeRobotDataset with LeRobot's own writer into a temporary
folder and renames it to ``root`` (a half-written dataset never appears at ``root``); the
temporaries of a killed run are removed by the next.

    executor-sim-generate --preset debug
    executor-sim-generate --num-episodes 300 --seed 0 --resolution 64 --workers 2 \
        --root data/sim_v1
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from executor_core.atomic_io import (
    atomic_path,
    claim_cache,
    remove_leftovers,
    write_json_atomic,
    write_npz_atomic,
)
from executor_core.config_cli import (
    check_non_negative,
    cli_main,
    config_to_dict,
    configure_cli_logging,
    parse_config,
    save_config_json,
)
from executor_core.video_io import keep_thread_scheduling
from executor_sim.env import EnvConfig
from executor_sim.rollout import Episode, worker_rollout
from executor_sim.scene import scene_signature
from executor_sim.tasks import TASK_FAMILIES

logger = logging.getLogger(__name__)

JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
IMAGE_KEY = "observation.images.scene"
# Seeds from here on are never used for training data: evaluation draws from them.
HELD_OUT_SEED_START = 1_000_000


@dataclass(frozen=True)
class GenerateConfig:
    root: Path = Path("data/sim_v1")
    repo_id: str = "executor/sim_v1"
    num_episodes: int = 300
    seed: int = 0  # episode i uses seed + i
    tasks: tuple[str, ...] = TASK_FAMILIES
    resolution: int = 64  # square frames, px
    fps: int = 10
    num_frames: int = 64  # per episode; the expert holds still once done
    workers: int = 2
    keep_failures: bool = True  # failed expert episodes stay in the dataset, flagged
    keep_cache: bool = False  # keep <root>.cache after the dataset is written
    camera_jitter_m: float = 0.0
    overwrite: bool = False  # replace an existing dataset at root made with another config

    def __post_init__(self) -> None:
        if self.num_episodes <= 0:
            raise ValueError(f"num_episodes must be > 0, got {self.num_episodes!r}")
        if self.seed < 0 or self.seed + self.num_episodes > HELD_OUT_SEED_START:
            raise ValueError(
                f"seeds [{self.seed}, {self.seed + self.num_episodes}) must stay below the "
                f"held-out range starting at {HELD_OUT_SEED_START}"
            )
        unknown = [t for t in self.tasks if t not in TASK_FAMILIES]
        if unknown or not self.tasks:
            raise ValueError(
                f"tasks must be a non-empty subset of {TASK_FAMILIES}, got {self.tasks!r}"
            )
        if self.resolution not in (32, 64, 96, 128, 256):
            raise ValueError(
                f"resolution must be one of 32, 64, 96, 128, 256, got {self.resolution!r}"
            )
        if not 1 <= self.num_frames <= 256:
            raise ValueError(f"num_frames must be in [1, 256], got {self.num_frames!r}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers!r}")
        check_non_negative(self, "camera_jitter_m")  # its upper bound: EnvConfig's
        if not self.repo_id or "/" not in self.repo_id:
            raise ValueError(f"repo_id must look like 'owner/name', got {self.repo_id!r}")

    def env_config(self) -> EnvConfig:
        return EnvConfig(
            image_size_px=self.resolution,
            fps_hz=float(self.fps),
            task_families=self.tasks,
            camera_jitter_m=self.camera_jitter_m,
        )

    def cache_dir(self) -> Path:
        return self.root.with_name(self.root.name + ".cache")


PRESETS: dict[str, GenerateConfig] = {
    "debug": GenerateConfig(
        root=Path("outputs/sim_debug"),
        repo_id="executor/sim_debug",
        num_episodes=3,
        num_frames=16,
        workers=1,
    ),
    "sim_v1": GenerateConfig(),
    "demo_128": GenerateConfig(
        root=Path("data/sim_demo_128"),
        repo_id="executor/sim_demo_128",
        num_episodes=30,
        resolution=128,
    ),
}


def episode_plan(cfg: GenerateConfig) -> list[tuple[int, str]]:
    """(seed, task family) of every episode, in dataset order."""
    return [(cfg.seed + i, cfg.tasks[i % len(cfg.tasks)]) for i in range(cfg.num_episodes)]


def _cache_path(cfg: GenerateConfig, seed: int) -> Path:
    return cfg.cache_dir() / f"seed_{seed:07d}.npz"


def _episode_defining(cfg: GenerateConfig) -> dict[str, Any]:
    """The config fields that change an episode with a given seed."""
    return {
        "tasks": list(cfg.tasks),
        "resolution": cfg.resolution,
        "fps": cfg.fps,
        "num_frames": cfg.num_frames,
        "camera_jitter_m": cfg.camera_jitter_m,
    }


def rollout_all(cfg: GenerateConfig, progress: bool = True) -> None:
    """Roll out every episode not yet in the cache (resumable)."""
    from tqdm import tqdm

    cache = cfg.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    # Cached episodes are only reusable if they were made the same way.
    claim_cache(cache, {"scene": scene_signature(), **_episode_defining(cfg)})
    save_config_json(cfg, cache / "generate_config.json")
    _remove_leftovers(cache, "seed_*")  # no worker is writing yet
    todo = [(s, f) for s, f in episode_plan(cfg) if not _cache_path(cfg, s).is_file()]
    done = cfg.num_episodes - len(todo)
    if done:
        logger.info(
            "resuming: %d of %d episodes already cached in %s", done, cfg.num_episodes, cache
        )
    jobs = [(cfg.env_config(), s, f, cfg.num_frames) for s, f in todo]
    bar = tqdm(total=cfg.num_episodes, initial=done, desc="episodes", disable=not progress)
    if cfg.workers == 1 or len(jobs) <= 1:
        results = map(worker_rollout, jobs)
        for (seed, _), episode in zip(todo, results, strict=True):
            write_npz_atomic(_cache_path(cfg, seed), episode.to_npz_dict(), compressed=True)
            bar.update(1)
    else:
        # spawn: a forked EGL/MuJoCo context is not safe to reuse in the child.
        with mp.get_context("spawn").Pool(cfg.workers) as pool:
            for episode in pool.imap_unordered(worker_rollout, jobs):
                seed = episode.metadata["seed"]
                write_npz_atomic(_cache_path(cfg, seed), episode.to_npz_dict(), compressed=True)
                bar.update(1)
    bar.close()


def _remove_leftovers(parent: Path, name_pattern: str) -> None:
    for leftover in remove_leftovers(parent, name_pattern):
        logger.info("removed %s, left by an interrupted write", leftover)


def dataset_features(resolution: int) -> dict[str, dict[str, Any]]:
    return {
        IMAGE_KEY: {
            "dtype": "video",
            "shape": (resolution, resolution, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.state": {"dtype": "float32", "shape": (6,), "names": list(JOINT_NAMES)},
        "action": {"dtype": "float32", "shape": (6,), "names": list(JOINT_NAMES)},
    }


def write_dataset(cfg: GenerateConfig, progress: bool = True) -> dict[str, Any]:
    """Write the cached episodes as a LeRobotDataset at ``cfg.root`` (atomically)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    # A killed write leaves only a hidden temporary folder beside root, never a half
    # dataset; the next write removes it.
    _remove_leftovers(cfg.root.parent, cfg.root.name)
    with atomic_path(cfg.root, directory=True) as build:
        build.rmdir()  # LeRobot creates the folder itself
        dataset = LeRobotDataset.create(
            repo_id=cfg.repo_id,
            fps=cfg.fps,
            features=dataset_features(cfg.resolution),
            root=build,
            robot_type="so101",
            use_videos=True,
        )
        records, attempted = _add_cached_episodes(dataset, cfg, progress)
        with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
            dataset.finalize()
        # LeRobot's temporary frame folder is empty once every episode is encoded.
        shutil.rmtree(build / "images", ignore_errors=True)
        summary = _summary(cfg, attempted, len(records))
        _write_meta(build / "meta", cfg, records, summary)
    return summary


def _add_cached_episodes(
    dataset: Any, cfg: GenerateConfig, progress: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Append every cached episode (failures only with keep_failures) to the dataset;
    returns (written records, attempted episodes' seed/family/success)."""
    from tqdm import tqdm

    records: list[dict[str, Any]] = []
    attempted: list[dict[str, Any]] = []
    for seed, _family in tqdm(episode_plan(cfg), desc="writing", disable=not progress):
        with np.load(_cache_path(cfg, seed)) as data:
            episode = Episode.from_npz(data)
        attempted.append({k: episode.metadata[k] for k in ("seed", "task_family", "success")})
        if not episode.metadata["success"] and not cfg.keep_failures:
            continue
        prompt = episode.metadata["prompt"]
        for t in range(len(episode.images)):
            dataset.add_frame(
                {
                    IMAGE_KEY: episode.images[t],
                    "observation.state": episode.states_rad[t],
                    "action": episode.actions_rad[t],
                    "task": prompt,
                }
            )
        with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
            dataset.save_episode()
        records.append({"episode_index": len(records), **episode.metadata})
    return records, attempted


def _write_meta(
    meta: Path, cfg: GenerateConfig, records: list[dict[str, Any]], summary: dict[str, Any]
) -> None:
    """Our files beside LeRobot's metadata (inside the dataset being built)."""
    (meta / "executor_episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (meta / "executor_generation.json").write_text(json.dumps(summary, indent=2) + "\n")
    save_config_json(cfg, meta / "executor_generate_config.json")


def _summary(cfg: GenerateConfig, attempted: list[dict[str, Any]], written: int) -> dict:
    by_family: dict[str, dict[str, int]] = {}
    for a in attempted:
        fam = by_family.setdefault(a["task_family"], {"attempted": 0, "success": 0})
        fam["attempted"] += 1
        fam["success"] += int(a["success"])
    return {
        "episodes_attempted": len(attempted),
        "episodes_written": written,
        "expert_success_rate": sum(a["success"] for a in attempted) / max(len(attempted), 1),
        "by_family": by_family,
        "failed_seeds": [a["seed"] for a in attempted if not a["success"]],
        "train_seed_range": [cfg.seed, cfg.seed + cfg.num_episodes],
        "held_out_seed_start": HELD_OUT_SEED_START,
        "scene_signature": scene_signature(),
        "config": config_to_dict(cfg),
    }


def generate(cfg: GenerateConfig, progress: bool = True) -> dict[str, Any]:
    """Roll out (resumably) then write the dataset; returns the generation summary."""
    start = time.perf_counter()
    rollout_all(cfg, progress)
    rollout_s = time.perf_counter() - start
    summary = write_dataset(cfg, progress)
    summary["rollout_s"] = rollout_s
    summary["total_s"] = time.perf_counter() - start
    write_json_atomic(cfg.root / "meta" / "executor_generation.json", summary)
    if not cfg.keep_cache:
        shutil.rmtree(cfg.cache_dir(), ignore_errors=True)
    return summary


def normalise_cli_args(argv: list[str]) -> list[str]:
    """Accept ``--num-episodes`` as well as ``--num_episodes``."""
    out = []
    for arg in argv:
        if arg.startswith("--"):
            key, eq, value = arg[2:].partition("=")
            arg = "--" + key.replace("-", "_") + eq + value
        out.append(arg)
    return out


@cli_main("executor-sim-generate")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    argv = normalise_cli_args(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(GenerateConfig, argv, PRESETS)
    if cfg.root.exists():
        marker = cfg.root / "meta" / "executor_generation.json"
        done = json.loads(marker.read_text()) if marker.is_file() else {}
        previous = done.get("config", {})
        previous.pop("overwrite", None)
        current = config_to_dict(cfg)
        current.pop("overwrite")
        if previous == current and done.get("scene_signature") == scene_signature():
            print(f"{cfg.root} is already complete for this config; nothing to do")
            return
        if not cfg.overwrite:
            raise ValueError(
                f"{cfg.root} exists and was made with another config or scene version; "
                f"pass --overwrite=true to replace it"
            )
    summary = generate(cfg)
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "episodes_written",
                    "expert_success_rate",
                    "by_family",
                    "rollout_s",
                    "total_s",
                )
            },
            indent=2,
        )
    )
    print(f"dataset: {cfg.root.resolve()}")


if __name__ == "__main__":
    sys.exit(main())
