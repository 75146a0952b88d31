"""Evaluate an IDM checkpoint: held-out action error and replay success in the simulator.

    executor-idm-evaluate --checkpoint checkpoints/idm_sim --dataset_root data/sim_v1

1. **Action error** on the held-out episodes (the split saved with the checkpoint's training
   config): mean absolute error per joint in radians, with and without the joint state.
2. **Replay success**: for each held-out episode the simulator is reset to the recorded
   scene (``seed``, ``task_family`` from ``meta/executor_episodes.jsonl``) and the IDM is fed
   the expert's recorded video frames at ``frame_stride``:

   - *open loop*: all chunks are predicted up front from the recorded frames (state chained
     from the first recorded state, as the executor node does on an imagined video) and
     executed blind;
   - *closed loop*: every ``frame_stride`` steps the IDM sees the simulator's current frame
     and measured joint state plus the expert's recorded frame one stride ahead (the goal).

   Every mode runs as many steps as the recording plus ``settle_steps`` holding the last
   target; the task's own success predicate then judges. The expert's recorded success
   and the replay of its recorded actions ("expert") are reported beside it.
3. Optionally (``--fresh_episodes N``) the same replays on N new expert rollouts from the
   held-out seed range (>= 1e6): more episodes than the held-out split gives.

The simulator is imported here only; the IDM package itself does not depend on it.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from executor_core.atomic_io import write_json_atomic
from executor_core.config_cli import (
    cli_main,
    config_from_dict,
    configure_cli_logging,
    parse_config,
    require_local_dataset,
)
from executor_sim.env import EnvConfig, TabletopEnv, make_env
from executor_sim.rollout import rollout_expert
from inverse_dynamics.dataset_idm import (
    EpisodeArrays,
    TransitionSampler,
    load_episodes,
    split_episodes,
)
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from inverse_dynamics.train_idm import TRAIN_CONFIG_NAME, TrainIDMConfig, heldout_error_rad

logger = logging.getLogger(__name__)

ReplayMode = Literal["expert", "open_loop", "closed_loop"]
REPLAY_MODES: tuple[ReplayMode, ...] = ("expert", "open_loop", "closed_loop")


@dataclass(frozen=True)
class EvalIDMConfig:
    checkpoint: Path = Path("checkpoints/idm_sim")
    dataset_root: Path | None = None  # None: the dataset the checkpoint was trained on
    episodes: tuple[int, ...] = ()  # empty: the checkpoint's held-out episodes
    max_episodes: int | None = None
    settle_steps: int = 10  # hold the last target this long before judging success
    replay: bool = True  # replay the held-out dataset episodes in the simulator
    # Extra replays on new expert rollouts from the held-out seed range (>= 1e6): more
    # episodes than the held-out split, frames rendered fresh (not video-compressed).
    fresh_episodes: int = 0
    fresh_seed_start: int = 1_000_000
    seed: int = 0
    num_threads: int = 1
    output_json: Path | None = None

    def __post_init__(self) -> None:
        if self.settle_steps < 0:
            raise ValueError(f"settle_steps must be >= 0, got {self.settle_steps!r}")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ValueError(f"max_episodes must be >= 1 or None, got {self.max_episodes!r}")
        if self.fresh_episodes < 0:
            raise ValueError(f"fresh_episodes must be >= 0, got {self.fresh_episodes!r}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads!r}")


PRESETS: dict[str, EvalIDMConfig] = {
    "debug": EvalIDMConfig(max_episodes=2, settle_steps=2),
    "full": EvalIDMConfig(fresh_episodes=60),
}


def episode_records(dataset_root: Path) -> dict[int, dict[str, Any]]:
    path = dataset_root / "meta" / "executor_episodes.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: replay needs each episode's seed and task")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {int(r["episode_index"]): r for r in records}


def _stride_frames(episode: EpisodeArrays, stride: int) -> np.ndarray:
    """Recorded frames 0, s, 2s, ... -> (N, S, S, 3) uint8 (a tail shorter than s is left
    out: no chunk can reach a frame that was never recorded)."""
    idx = np.arange(0, episode.frames.shape[0], stride)
    return episode.frames[idx].permute(0, 2, 3, 1).numpy()


def reset_to_record(env: TabletopEnv, record: dict[str, Any]) -> dict[str, np.ndarray]:
    """Reset the simulator to a recorded episode's scene and task. Generators may reset with
    or without naming the family (it changes the random stream), so both are tried and the
    recorded prompt decides."""
    seed = int(record["seed"])
    obs = env.reset(seed)
    if env.task.prompt != record["prompt"]:
        obs = env.reset(seed, task_family=record["task_family"])
    if env.task.prompt != record["prompt"]:
        raise RuntimeError(
            f"episode {record['episode_index']}: reset(seed={seed}) reproduced task "
            f"{env.task.prompt!r}, the dataset recorded {record['prompt']!r}"
        )
    return obs


def replay_episode(
    policy: InverseDynamicsPolicy,
    env: TabletopEnv,
    record: dict[str, Any],
    episode: EpisodeArrays,
    mode: ReplayMode,
    settle_steps: int,
) -> tuple[bool, int]:
    """Run one replay in the simulator -> (task success, actions the simulator clipped to
    the joint limits)."""
    stride = policy.config.frame_stride
    k = policy.config.num_input_frames
    obs = reset_to_record(env, record)
    env.num_clipped_actions = 0
    frames = _stride_frames(episode, stride)
    # Every mode runs exactly as many steps as the recording (+ settling) before judging,
    # so a chunked replay is not favoured or punished by a different time budget.
    budget = episode.frames.shape[0] + settle_steps
    executed: list[np.ndarray] = []

    def act(action: np.ndarray) -> dict[str, np.ndarray]:
        executed.append(action)
        return env.step(action)

    if mode == "expert":
        for action in episode.action_rad.numpy():
            act(action)
    elif mode == "open_loop":
        for chunk in policy.predict(frames, episode.state_rad[0].numpy()):
            for action in chunk.joint_positions_rad:
                act(action)
    else:
        history = [obs["image"]] * (k - 1)  # the simulator's own frames, newest last
        for i in range(len(frames) - 1):
            window = np.stack([*history[-(k - 1) :], frames[i + 1]])
            chunk = policy.predict_chunk(window, obs["state"])
            for action in chunk.joint_positions_rad:
                obs = act(action)
            history.append(obs["image"])
    hold = executed[-1] if executed else env.joint_positions_rad()
    while len(executed) < budget:
        act(hold)
    return bool(env.task.is_success(env)), int(env.num_clipped_actions)


def env_for_dataset(dataset_root: Path, image_size_px: int) -> TabletopEnv:
    """The simulator configured as the dataset generator was (camera jitter, rate)."""
    gen_path = dataset_root / "meta" / "executor_generate_config.json"
    kwargs: dict[str, Any] = {"image_size_px": image_size_px}
    if gen_path.is_file():
        gen = json.loads(gen_path.read_text())
        kwargs.update(
            fps_hz=float(gen.get("fps", 10)),
            task_families=tuple(gen.get("tasks", EnvConfig().task_families)),
            camera_jitter_m=float(gen.get("camera_jitter_m", 0.0)),
        )
    else:
        logger.warning("%s not found: replaying with the default simulator config", gen_path)
    return make_env(EnvConfig(**kwargs))


def fresh_rollouts(
    env: TabletopEnv, num_episodes: int, seed_start: int, num_frames: int
) -> list[tuple[dict[str, Any], EpisodeArrays]]:
    """New expert rollouts from the held-out seed range (never in any training set), the
    families in turn: (record, episode) pairs as :func:`replay_all` takes them."""
    families = env.cfg.task_families
    out = []
    for i in range(num_episodes):
        seed = seed_start + i
        ep = rollout_expert(env, seed, families[i % len(families)], num_frames)
        record = {"episode_index": -1 - i, **ep.metadata}
        frames = torch.from_numpy(np.ascontiguousarray(ep.images)).permute(0, 3, 1, 2)
        out.append(
            (
                record,
                EpisodeArrays(
                    -1 - i,
                    frames,
                    torch.from_numpy(ep.states_rad),
                    torch.from_numpy(ep.actions_rad),
                ),
            )
        )
    return out


def replay_all(
    policy: InverseDynamicsPolicy,
    env: TabletopEnv,
    items: list[tuple[dict[str, Any], EpisodeArrays]],
    settle_steps: int,
) -> dict[str, Any]:
    """Every item replayed in every mode of ``REPLAY_MODES``: success rates, per family and
    per episode."""
    outcomes: dict[str, list[bool]] = {m: [] for m in REPLAY_MODES}
    recorded: list[bool] = []
    clipped = dict.fromkeys(REPLAY_MODES, 0)
    for record, episode in items:
        recorded.append(bool(record["success"]))
        for mode in REPLAY_MODES:
            ok, num_clipped = replay_episode(policy, env, record, episode, mode, settle_steps)
            outcomes[mode].append(ok)
            clipped[mode] += num_clipped
        logger.info(
            "episode %d seed %d (%s): recorded %s, %s",
            episode.episode_index,
            record["seed"],
            record["task_family"],
            record["success"],
            {m: v[-1] for m, v in outcomes.items()},
        )
    families = sorted({r["task_family"] for r, _ in items})
    by_family = {
        fam: {
            m: float(
                np.mean(
                    [
                        v
                        for (r, _), v in zip(items, outcomes[m], strict=True)
                        if r["task_family"] == fam
                    ]
                )
            )
            for m in REPLAY_MODES
        }
        for fam in families
    }
    return {
        "num_episodes": len(items),
        "success_rate_recorded_expert": float(np.mean(recorded)),
        **{f"success_rate_{m}": float(np.mean(v)) for m, v in outcomes.items()},
        "by_family": by_family,
        "clipped_actions": clipped,
        "per_episode": [
            {
                "seed": int(r["seed"]),
                "task_family": r["task_family"],
                "recorded": bool(r["success"]),
                **{m: outcomes[m][i] for m in REPLAY_MODES},
            }
            for i, (r, _) in enumerate(items)
        ],
    }


def evaluate(cfg: EvalIDMConfig) -> dict[str, Any]:
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    policy = InverseDynamicsPolicy.from_pretrained(cfg.checkpoint)
    train_cfg_path = cfg.checkpoint / TRAIN_CONFIG_NAME
    train_cfg = (
        config_from_dict(TrainIDMConfig, json.loads(train_cfg_path.read_text()))
        if train_cfg_path.is_file()
        else None
    )
    dataset_root = cfg.dataset_root or (train_cfg.dataset_root if train_cfg else None)
    if dataset_root is None:
        raise ValueError(f"no dataset_root given and {train_cfg_path} does not name one")
    dataset_root = require_local_dataset(dataset_root)  # before lerobot tries the Hub
    episodes = list(cfg.episodes)
    if not episodes:
        if train_cfg is None:
            raise ValueError(f"no episodes given and no {train_cfg_path} with the held-out split")
        from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

        meta = LeRobotDatasetMetadata("local/dataset", root=dataset_root)
        all_eps = list(range(meta.total_episodes))[: train_cfg.max_episodes]
        episodes = split_episodes(all_eps, train_cfg.val_fraction, train_cfg.seed)[1]
    episodes = episodes[: cfg.max_episodes]
    loaded = load_episodes(dataset_root, policy.config, episodes)
    err = heldout_error_rad(policy.model, TransitionSampler(loaded, policy.config), 10**9)
    results: dict[str, Any] = {
        "checkpoint": str(cfg.checkpoint),
        "dataset_root": str(dataset_root),
        "episodes": episodes,
        "joint_names": list(policy.config.joint_names),
        "action_mae_rad_with_state": err["with_state"].round(5).tolist(),
        "action_mae_rad_without_state": err["without_state"].round(5).tolist(),
    }
    if cfg.replay or cfg.fresh_episodes:
        env = env_for_dataset(Path(dataset_root), int(loaded[0].frames.shape[-1]))
        try:
            if cfg.replay:
                records = episode_records(Path(dataset_root))
                items = [(records[e.episode_index], e) for e in loaded]
                results["replay_heldout"] = replay_all(policy, env, items, cfg.settle_steps)
            if cfg.fresh_episodes:
                num_frames = int(loaded[0].frames.shape[0])
                items = fresh_rollouts(env, cfg.fresh_episodes, cfg.fresh_seed_start, num_frames)
                results["replay_fresh_seeds"] = replay_all(policy, env, items, cfg.settle_steps)
        finally:
            env.close()
    if cfg.output_json is not None:
        write_json_atomic(cfg.output_json, results)
    return results


def format_results(results: dict[str, Any]) -> list[str]:
    """Human-readable lines of :func:`evaluate`'s results (for the CLI and the benchmark)."""
    names = results["joint_names"]
    lines = [f"held-out action MAE (rad) per joint, {len(results['episodes'])} episodes:"]
    for key in ("action_mae_rad_with_state", "action_mae_rad_without_state"):
        row = "  ".join(f"{n}={v:.4f}" for n, v in zip(names, results[key], strict=True))
        lines.append(f"  {key.removeprefix('action_mae_rad_')}: {row}")
    for section in ("replay_heldout", "replay_fresh_seeds"):
        if section in results:
            r = results[section]
            rates = ", ".join(
                f"{key.removeprefix('success_rate_')} {value:.3f}"
                for key, value in r.items()
                if key.startswith("success_rate")
            )
            lines.append(f"{section} ({r['num_episodes']} episodes) success: {rates}")
            for fam, by_mode in r["by_family"].items():
                lines.append(f"  {fam}: " + ", ".join(f"{m} {v:.2f}" for m, v in by_mode.items()))
    return lines


@cli_main("executor-idm-evaluate")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging("%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(EvalIDMConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    print("\n".join(format_results(evaluate(cfg))))


if __name__ == "__main__":
    sys.exit(main())
