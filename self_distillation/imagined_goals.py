"""IDM training pairs whose goal frames look like the Executor's, and the replay that
measures an IDM on them.

    executor-imagined-goals --dataset_root data/sim_v1 --idm checkpoints/idm_sim \\
        --split train --output outputs/imagined_goals/train.npz
    executor-imagined-goals --split heldout --output outputs/imagined_goals/heldout.npz \\
        --replay_checkpoints checkpoints/idm_sim,outputs/idm_imagined/model

Why: the IDM was trained on the simulator's sharp frames, and in closed loop it tracks the
Executor's imagined frames, where the arm is a soft blur and cubes jump. A 0.7 px blur of
the goal frames already takes its replay success from 94 % to 78 % (shared/FINDINGS.md).

How: every expert clip is *re-generated* by the Executor itself (SDEdit, Meng et al. 2022):
the clip's frames at the IDM's stride (the Executor's own frame spacing: 2.5 fps = 4
control steps at 10 Hz) are encoded, noised to the flow-matching level ``sigma`` at one of
the sampler's steps, and denoised by the rest of the Executor's sampler, conditioned on
the clip's first frame and its short prompt. The output keeps the clip's motion (the
noise level decides how much) and has the Executor's look. Each pair is
(the simulator's real frame at t, the re-generated frame at t + stride) with the expert's
true targets for that stride: the corrections format (``frames`` (N, 2, 3, S, S),
``state_rad``, ``actions_rad``) that ``executor-idm-train --corrections`` mixes into its
batches.

Only the IDM checkpoint's own split is used: ``--split train`` its training episodes (for
training data), ``--split heldout`` its held-out episodes (for measuring). With
``--replay_checkpoints`` each IDM is replayed closed loop on the held-out episodes twice:
with the recorded (clean) goal frames and with the re-generated ones, at every sigma
(``imagined_goal_replay`` in the summary).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from executor_core.atomic_io import remove_leftovers, write_json_atomic, write_npz_atomic
from executor_core.config_cli import (
    cli_main,
    configure_cli_logging,
    parse_config,
    require_local_dataset,
)
from inverse_dynamics.dataset_idm import EpisodeArrays, load_episodes, split_episodes
from inverse_dynamics.evaluate_idm import env_for_dataset, episode_records, replay_episode
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from inverse_dynamics.train_idm import TRAIN_CONFIG_NAME
from self_distillation.video_models import load_video_pipeline
from video_models.pipeline_executor import ExecutorVideoPipeline

logger = logging.getLogger(__name__)

Split = Literal["train", "heldout"]


@dataclass(frozen=True)
class ImaginedGoalsConfig:
    dataset_root: Path = Path("data/sim_v1")
    idm: Path = Path("checkpoints/idm_sim")  # its training config defines the split
    executor: Path = Path("checkpoints/executor_sim")
    split: Split = "train"
    output: Path = Path("outputs/imagined_goals/train.npz")
    # Flow-matching noise levels of the re-generation (0 = the clip itself, 1 = a video
    # imagined from the first frame alone); each is rounded to the nearest sampler step.
    sigmas: tuple[float, ...] = (0.5, 0.7, 0.85)
    max_episodes: int | None = None
    batch_size: int = 8
    seed: int = 0
    num_threads: int = 2
    # Closed-loop replay of these IDM checkpoints on the re-generated goals (heldout only).
    replay_checkpoints: tuple[Path, ...] = ()
    settle_steps: int = 10
    summary_json: Path | None = None
    # reuse the clips of ``output`` when it was made from the same inputs (e.g. to replay
    # more checkpoints on the same held-out re-generations)
    reuse: bool = True

    def __post_init__(self) -> None:
        if self.split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {self.split!r}")
        if not self.sigmas or any(not 0.0 < s < 1.0 for s in self.sigmas):
            raise ValueError(f"sigmas must be non-empty, each in (0, 1), got {self.sigmas!r}")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ValueError(f"max_episodes must be >= 1 or None, got {self.max_episodes!r}")
        for name in ("batch_size", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.settle_steps < 0:
            raise ValueError(f"settle_steps must be >= 0, got {self.settle_steps!r}")
        if self.output.suffix != ".npz":
            raise ValueError(f"output must be a .npz file, got {str(self.output)!r}")
        if self.replay_checkpoints and self.split != "heldout":
            raise ValueError(
                f"replay_checkpoints measure on held-out episodes: split must be 'heldout', "
                f"got {self.split!r}"
            )


PRESETS: dict[str, ImaginedGoalsConfig] = {
    "debug": ImaginedGoalsConfig(
        output=Path("outputs/imagined_goals/debug.npz"), max_episodes=2, sigmas=(0.7,)
    ),
}


# ------------------------------------------------------------------------- re-generation
def sampler_step_for(pipe: ExecutorVideoPipeline, sigma: float) -> tuple[int, float]:
    """(k, sigma_k): the sampler step whose noise level is nearest ``sigma`` (k >= 1, so
    that the clip can be put in after step k - 1 ends)."""
    pipe.scheduler.set_timesteps(pipe.config.num_inference_steps)
    sigmas = pipe.scheduler.sigmas[:-1].float().numpy()  # the last one is the clean end
    k = int(np.argmin(np.abs(sigmas[1:] - sigma))) + 1
    return k, float(sigmas[k])


def regenerate(
    pipe: ExecutorVideoPipeline,
    clips_uint8: np.ndarray,  # (B, T, S, S, 3) the expert's frames at the Executor's spacing
    prompts: list[str],
    sigma: float,
    seeds: list[int],
) -> np.ndarray:
    """SDEdit through the Executor's own sampler -> (B, T, S, S, 3) uint8."""
    k, sigma_k = sampler_step_for(pipe, sigma)
    clean = torch.from_numpy(clips_uint8).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
    x0 = pipe.encode_video(clean.to(pipe.device, pipe.transformer.dtype)).float()
    noise = torch.stack(
        [torch.randn(x0.shape[1:], generator=torch.Generator().manual_seed(s)) for s in seeds]
    ).to(x0.device)
    start = ((1.0 - sigma_k) * x0 + sigma_k * noise).to(pipe.transformer.dtype)

    def put_clip_in(_pipe: Any, step: int, _t: Any, tensors: dict) -> dict:
        return {"latents": start} if step == k - 1 else {}

    out = pipe(
        image=[c[0] for c in clips_uint8],
        prompt=prompts,
        seed=seeds,
        num_frames=clips_uint8.shape[1],
        callback_on_step_end=put_clip_in,
    )
    return out.frames


# ---------------------------------------------------------------------------- the episodes
def split_of(idm: Path, dataset_root: Path, split: Split) -> list[int]:
    """The IDM checkpoint's training or held-out episodes of ``dataset_root``."""
    path = idm / TRAIN_CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the IDM's training split decides the episodes")
    train_cfg = json.loads(path.read_text())
    if Path(train_cfg["dataset_root"]).resolve() != dataset_root.resolve():
        raise ValueError(
            f"IDM {str(idm)!r} was trained on {train_cfg['dataset_root']!r}, not "
            f"{str(dataset_root)!r}: its split is defined there"
        )
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

    total = LeRobotDatasetMetadata("local/dataset", root=dataset_root).total_episodes
    all_eps = list(range(total))[: train_cfg.get("max_episodes")]
    train, heldout = split_episodes(all_eps, float(train_cfg["val_fraction"]), train_cfg["seed"])
    return train if split == "train" else heldout


def strided_clip(episode: EpisodeArrays, stride: int, num_frames: int) -> np.ndarray | None:
    """(num_frames, S, S, 3) uint8 frames 0, s, 2s, ... or None if the episode is short."""
    idx = np.arange(num_frames) * stride
    if idx[-1] >= episode.frames.shape[0]:
        return None
    return episode.frames[idx].permute(0, 2, 3, 1).numpy()


def pairs_from(
    episode: EpisodeArrays, regenerated: np.ndarray, stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(real frame t, re-generated frame t + s) pairs with the true state and targets."""
    frames, states, actions = [], [], []
    for j in range(regenerated.shape[0] - 1):
        t = j * stride
        goal = torch.from_numpy(np.ascontiguousarray(regenerated[j + 1])).permute(2, 0, 1)
        frames.append(torch.stack([episode.frames[t], goal]).numpy())
        states.append(episode.state_rad[t].numpy())
        actions.append(episode.action_rad[t : t + stride].numpy())
    return np.stack(frames), np.stack(states), np.stack(actions)


def with_goals(episode: EpisodeArrays, regenerated: np.ndarray, stride: int) -> EpisodeArrays:
    """The episode with its frames at the stride replaced by the re-generated ones (what a
    closed-loop replay reads as its goals)."""
    frames = episode.frames.clone()
    for j in range(1, regenerated.shape[0]):
        frames[j * stride] = torch.from_numpy(np.ascontiguousarray(regenerated[j])).permute(2, 0, 1)
    return replace(episode, frames=frames)


# ------------------------------------------------------------------------------- the run
def run(cfg: ImaginedGoalsConfig) -> dict[str, Any]:
    require_local_dataset(cfg.dataset_root)  # before lerobot, which would try the Hub
    if removed := remove_leftovers(cfg.output.parent, cfg.output.name):
        logger.info("removed %s, left by an interrupted write", [str(p) for p in removed])
    torch.set_num_threads(cfg.num_threads)
    idm = InverseDynamicsPolicy.from_pretrained(cfg.idm)
    if idm.config.num_input_frames != 2:
        raise ValueError(
            f"pairs are (current, goal): the IDM's num_input_frames must be 2, got "
            f"{idm.config.num_input_frames!r}"
        )
    pipe = load_video_pipeline(cfg.executor, "sim", device="cpu")
    stride, num_frames = idm.config.frame_stride, int(pipe.config.num_frames)
    if int(pipe.config.size_px) != idm.config.image_size_px:
        raise ValueError(
            f"the Executor draws {pipe.config.size_px} px, the IDM reads "
            f"{idm.config.image_size_px} px"
        )
    eps = split_of(cfg.idm, cfg.dataset_root, cfg.split)[: cfg.max_episodes]
    records = episode_records(cfg.dataset_root)
    episodes = load_episodes(cfg.dataset_root, idm.config, eps)
    usable = [(e, c) for e in episodes if (c := strided_clip(e, stride, num_frames)) is not None]
    if not usable:
        raise ValueError(f"no episode of {eps!r} has {num_frames} frames at stride {stride}")
    regenerated = _reuse(cfg, usable) if cfg.reuse else None
    if regenerated is None:
        regenerated = _regenerate_all(cfg, pipe, usable, records)
        summary = _write_pairs(cfg, pipe, usable, regenerated, stride)
    else:
        logger.info("reusing the re-generated clips in %s", cfg.output)
        with np.load(cfg.output, allow_pickle=False) as data:
            meta = json.loads(str(data["metadata_json"]))
            summary = {"num_pairs": int(data["frames"].shape[0]), "output": str(cfg.output)}
        summary.update(meta)
    if cfg.replay_checkpoints:
        summary["imagined_goal_replay"] = _replay(cfg, usable, records, regenerated, stride)
    if cfg.summary_json is not None:
        write_json_atomic(cfg.summary_json, summary)
    return summary


def _regenerate_all(
    cfg: ImaginedGoalsConfig,
    pipe: ExecutorVideoPipeline,
    usable: list[tuple[EpisodeArrays, np.ndarray]],
    records: dict[int, dict[str, Any]],
) -> dict[float, list[np.ndarray]]:
    regenerated: dict[float, list[np.ndarray]] = {s: [] for s in cfg.sigmas}
    bar = tqdm(total=len(usable) * len(cfg.sigmas), desc="re-generating", mininterval=5.0)
    for start in range(0, len(usable), cfg.batch_size):
        batch = usable[start : start + cfg.batch_size]
        clips = np.stack([c for _, c in batch])
        prompts = [records[e.episode_index]["prompt"] for e, _ in batch]
        for i, sigma in enumerate(cfg.sigmas):
            seeds = [cfg.seed + 1000 * i + e.episode_index for e, _ in batch]
            regenerated[sigma].extend(regenerate(pipe, clips, prompts, sigma, seeds))
            bar.update(len(batch))
    bar.close()
    return regenerated


def _reuse(
    cfg: ImaginedGoalsConfig, usable: list[tuple[EpisodeArrays, np.ndarray]]
) -> dict[float, list[np.ndarray]] | None:
    """The clips of an earlier run with the same inputs at ``cfg.output``, else None."""
    if not cfg.output.is_file():
        return None
    with np.load(cfg.output, allow_pickle=False) as data:
        meta = json.loads(str(data["metadata_json"]))
        same = (
            meta["executor"] == str(cfg.executor)
            and meta["dataset_root"] == str(cfg.dataset_root)
            and meta["episodes"] == [e.episode_index for e, _ in usable]
            and meta["sigmas_requested"] == list(cfg.sigmas)
            and meta["seed"] == cfg.seed
        )
        if not same:
            logger.info("%s was made from other inputs: re-generating", cfg.output)
            return None
        clips = data["clips"]
    return {s: list(clips[i]) for i, s in enumerate(cfg.sigmas)}


def _write_pairs(
    cfg: ImaginedGoalsConfig,
    pipe: ExecutorVideoPipeline,
    usable: list[tuple[EpisodeArrays, np.ndarray]],
    regenerated: dict[float, list[np.ndarray]],
    stride: int,
) -> dict[str, Any]:
    frames, states, actions = [], [], []
    for sigma in cfg.sigmas:
        for (episode, _), clip in zip(usable, regenerated[sigma], strict=True):
            f, q, a = pairs_from(episode, clip, stride)
            frames.append(f)
            states.append(q)
            actions.append(a)
    metadata = {
        "kind": "imagined_goals",
        "executor": str(cfg.executor),
        "idm": str(cfg.idm),
        "dataset_root": str(cfg.dataset_root),
        "split": cfg.split,
        "episodes": [e.episode_index for e, _ in usable],
        "sigmas_requested": list(cfg.sigmas),
        "sigmas_used": [sampler_step_for(pipe, s)[1] for s in cfg.sigmas],
        "seed": cfg.seed,
    }
    arrays = {
        "frames": np.concatenate(frames),
        "state_rad": np.concatenate(states).astype(np.float32),
        "actions_rad": np.concatenate(actions).astype(np.float32),
        "clips": np.stack([np.stack(regenerated[s]) for s in cfg.sigmas]),  # (K, E, T, S, S, 3)
        "metadata_json": np.array(json.dumps(metadata)),
    }
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    write_npz_atomic(cfg.output, arrays)
    logger.info("wrote %d imagined-goal pairs to %s", arrays["frames"].shape[0], cfg.output)
    return {"num_pairs": int(arrays["frames"].shape[0]), "output": str(cfg.output), **metadata}


def _replay(
    cfg: ImaginedGoalsConfig,
    usable: list[tuple[EpisodeArrays, np.ndarray]],
    records: dict[int, dict[str, Any]],
    regenerated: dict[float, list[np.ndarray]],
    stride: int,
) -> dict[str, Any]:
    """Closed-loop replay success of each IDM with clean and re-generated goal frames."""
    out: dict[str, Any] = {}
    for checkpoint in cfg.replay_checkpoints:
        policy = InverseDynamicsPolicy.from_pretrained(checkpoint)
        env = env_for_dataset(cfg.dataset_root, policy.config.image_size_px)
        try:
            per_goal: dict[str, list[bool]] = {"clean": []}
            for episode, _ in usable:
                record = records[episode.episode_index]
                ok, _ = replay_episode(
                    policy, env, record, episode, "closed_loop", cfg.settle_steps
                )
                per_goal["clean"].append(ok)
            for sigma, clips in regenerated.items():
                key = f"sigma_{sigma:g}"
                per_goal[key] = []
                for (episode, _), clip in zip(usable, clips, strict=True):
                    record = records[episode.episode_index]
                    moved = with_goals(episode, clip, stride)
                    ok, _ = replay_episode(
                        policy, env, record, moved, "closed_loop", cfg.settle_steps
                    )
                    per_goal[key].append(ok)
        finally:
            env.close()
        families = [records[e.episode_index]["task_family"] for e, _ in usable]
        out[str(checkpoint)] = {
            goal: {
                "success": float(np.mean(oks)),
                "n": len(oks),
                "by_family": {
                    fam: float(np.mean([o for o, f in zip(oks, families, strict=True) if f == fam]))
                    for fam in sorted(set(families))
                },
                "per_episode": [bool(o) for o in oks],
            }
            for goal, oks in per_goal.items()
        }
        logger.info(
            "%s: %s", checkpoint, {g: v["success"] for g, v in out[str(checkpoint)].items()}
        )
    return out


@cli_main("executor-imagined-goals")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging("%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(ImaginedGoalsConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    summary = run(cfg)
    print(json.dumps({k: v for k, v in summary.items() if k != "episodes"}))


if __name__ == "__main__":
    sys.exit(main())
