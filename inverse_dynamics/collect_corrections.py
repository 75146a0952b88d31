"""Closed-loop corrections for the IDM (DAgger): where the policy drifts, what the expert did.

    executor-idm-corrections --checkpoint checkpoints/idm_sim --dataset_root data/sim_v1 \\
        --output outputs/idm_corrections/round1.npz

Trained only on expert transitions, the IDM never sees the arm *off* the expert's path. In
closed loop it gets there after a few chunks (its own small errors), and then it repeats the
expert's motion from the wrong place instead of closing the gap to the goal frame: the
tracking error grows like a random walk. This collector runs the policy closed loop in the
simulator on *training* episodes, exactly as ``executor-idm-evaluate`` does (current frame
rendered by the simulator, measured joint state, the expert's recorded frame one stride
ahead as the goal), and stores each visited (current frame, goal frame, state) with the
expert's recorded absolute joint targets for that stride as the label (Ross et al., 2011).
Absolute targets are the right label from an off-path state too: a position-controlled arm
commanded to them ends where the goal frame shows it.

Only the checkpoint's training episodes are used (``--dataset_root``'s held-out split is
never touched), plus every episode of ``--extra_dataset_roots``. ``--action_noise_std_rad``
adds Gaussian noise to the executed (not the stored) targets, for states a little further
off the path than the policy alone reaches.

``--goal_arm_noise_rad`` (set, >= 0) stores another goal frame: the expert's recorded
actions are replayed in the simulator, and at each goal step the scene is rendered with the
arm's joints (not the gripper) moved by Gaussian noise of that std, objects where the expert
left them (0: re-rendered as recorded, without the dataset's video compression; the control
for a run with an offset).
The label stays the expert's targets. Imagined goal frames show the arm a little off any
path the arm can take (a grasp beside the cube); the question these answer is whether an IDM
can learn to go where the expert would rather than copy the offset. Measured for issue 14:
fine-tuned this way (0.03 rad), it did not (checkpoints/executor_sim/results/idm_arm_offset/).
The policy still tracks the recorded goal frames, so with the same seed the visited states
are those of a run without the noise.

Output: one ``.npz`` written atomically (``frames`` (N, 2, 3, S, S) uint8 current+goal,
``state_rad`` (N, J), ``actions_rad`` (N, s, J), ``metadata_json``) that ``executor-idm-train
--corrections`` mixes into its batches.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from executor_core.atomic_io import remove_leftovers, write_npz_atomic
from executor_core.config_cli import (
    cli_main,
    configure_cli_logging,
    parse_config,
    require_local_dataset,
)
from inverse_dynamics.dataset_idm import EpisodeArrays, load_episodes, split_episodes
from inverse_dynamics.evaluate_idm import env_for_dataset, episode_records, reset_to_record
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from inverse_dynamics.train_idm import TRAIN_CONFIG_NAME

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectCorrectionsConfig:
    checkpoint: Path = Path("checkpoints/idm_sim")
    dataset_root: Path = Path("data/sim_v1")  # its training episodes (the checkpoint's split)
    extra_dataset_roots: tuple[Path, ...] = ()  # all of their episodes
    output: Path = Path("outputs/idm_corrections/round1.npz")
    max_episodes_per_root: int | None = None
    action_noise_std_rad: float = 0.0
    # None: the recorded goal frames; >= 0: re-rendered with the arm moved by N(0, this)
    goal_arm_noise_rad: float | None = None
    seed: int = 0
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.max_episodes_per_root is not None and self.max_episodes_per_root < 1:
            raise ValueError(
                f"max_episodes_per_root must be >= 1 or None, got {self.max_episodes_per_root!r}"
            )
        if not (np.isfinite(self.action_noise_std_rad) and self.action_noise_std_rad >= 0):
            raise ValueError(
                f"action_noise_std_rad must be >= 0, got {self.action_noise_std_rad!r}"
            )
        noise = self.goal_arm_noise_rad
        if noise is not None and not (np.isfinite(noise) and 0 <= noise <= 0.5):
            raise ValueError(
                f"goal_arm_noise_rad must be in [0, 0.5], got {self.goal_arm_noise_rad!r}"
            )
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads!r}")
        if self.output.suffix != ".npz":
            raise ValueError(f"output must be a .npz file, got {str(self.output)!r}")


PRESETS: dict[str, CollectCorrectionsConfig] = {
    "debug": CollectCorrectionsConfig(
        output=Path("outputs/idm_corrections/debug.npz"), max_episodes_per_root=2
    ),
}


def _training_episodes(checkpoint: Path, dataset_root: Path) -> list[int]:
    """The training split saved with the checkpoint; refuse to guess it."""
    path = checkpoint / TRAIN_CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the training split decides which episodes may be used"
        )
    train_cfg = json.loads(path.read_text())
    trained_on = Path(train_cfg["dataset_root"]).resolve()
    if trained_on != dataset_root.resolve():
        raise ValueError(
            f"checkpoint {checkpoint} was trained on {str(trained_on)!r}, not "
            f"{str(dataset_root)!r}: its held-out split is defined there"
        )
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

    require_local_dataset(dataset_root)  # before lerobot, which would try the Hub
    total = LeRobotDatasetMetadata("local/dataset", root=dataset_root).total_episodes
    all_eps = list(range(total))[: train_cfg.get("max_episodes")]
    train_eps, _ = split_episodes(all_eps, float(train_cfg["val_fraction"]), int(train_cfg["seed"]))
    return train_eps


def arm_offset_goals(
    env: Any,  # executor_sim.env.TabletopEnv
    record: dict[str, Any],
    episode: EpisodeArrays,
    stride: int,
    size_px: int,
    noise_rad: float,
    rng: np.random.Generator,
) -> torch.Tensor:
    """The goal frames ``stride`` apart, re-rendered from the expert's replayed states with
    every joint but the gripper moved by N(0, ``noise_rad``), kept within the joint limits:
    (C, 3, S, S) uint8."""
    reset_to_record(env, record)
    num_goals = (episode.frames.shape[0] - 1) // stride
    moved = np.ones(episode.action_rad.shape[1], dtype=bool)
    moved[env.robot.joint_names.index("gripper")] = False
    goals = []
    for c in range(num_goals):
        for target in episode.action_rad[c * stride : (c + 1) * stride].numpy():
            env.step(target)
        offset = np.where(moved, rng.normal(0.0, noise_rad, moved.shape), 0.0)
        joints = np.clip(env.joint_positions_rad() + offset, env.lower_rad, env.upper_rad)
        goals.append(torch.from_numpy(env.render_with_arm_at(joints, size_px)).permute(2, 0, 1))
    return torch.stack(goals)


def collect_episode(
    policy: InverseDynamicsPolicy,
    env: Any,  # executor_sim.env.TabletopEnv
    record: dict[str, Any],
    episode: EpisodeArrays,
    rng: np.random.Generator,
    action_noise_std_rad: float,
    goal_arm_noise_rad: float | None = None,
    goal_rng: np.random.Generator | None = None,  # the arm offsets' draws
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One closed-loop run -> frames (C, 2, 3, S, S) uint8, state (C, J), actions (C, s, J)."""
    s = policy.config.frame_stride
    size = policy.config.image_size_px
    goals = episode.frames[s::s]  # (C, 3, S, S) recorded goal frames
    stored = goals
    if goal_arm_noise_rad is not None:  # own generator: the rollout's draws stay the same
        if goal_rng is None:
            raise ValueError("goal_arm_noise_rad needs a goal_rng")
        stored = arm_offset_goals(env, record, episode, s, size, goal_arm_noise_rad, goal_rng)
    obs = reset_to_record(env, record)
    frames, states, actions = [], [], []
    for c in range(goals.shape[0]):
        t = c * s
        if obs["image"].shape != (size, size, 3):
            raise ValueError(
                f"the simulator renders {obs['image'].shape!r}, the IDM needs ({size}, {size}, 3)"
            )
        current_u8 = torch.from_numpy(np.ascontiguousarray(obs["image"])).permute(2, 0, 1)
        goal_hwc = goals[c].permute(1, 2, 0).numpy()
        frames.append(torch.stack([current_u8, stored[c]]))
        states.append(obs["state"].astype(np.float32))
        actions.append(episode.action_rad[t : t + s].numpy())
        chunk = policy.predict_chunk(np.stack([obs["image"], goal_hwc]), obs["state"])
        for target in chunk.joint_positions_rad:
            noise = rng.normal(0.0, action_noise_std_rad, target.shape)
            obs = env.step(target + noise)
    return torch.stack(frames).numpy(), np.stack(states), np.stack(actions)


def collect(cfg: CollectCorrectionsConfig) -> dict[str, Any]:
    for root in cfg.extra_dataset_roots:  # dataset_root: in _training_episodes
        require_local_dataset(root)  # before lerobot, which would try the Hub
    # A killed run's half-written output (a hidden temporary beside it) goes now.
    if removed := remove_leftovers(cfg.output.parent, cfg.output.name):
        logger.info("removed %s, left by an interrupted write", [str(p) for p in removed])
    torch.set_num_threads(cfg.num_threads)
    policy = InverseDynamicsPolicy.from_pretrained(cfg.checkpoint)
    if policy.config.num_input_frames != 2:
        raise ValueError(
            f"corrections are (current, goal) pairs: num_input_frames must be 2, got "
            f"{policy.config.num_input_frames!r}"
        )
    rng = np.random.default_rng(cfg.seed)
    goal_rng = np.random.default_rng([cfg.seed, 1])
    # None: every episode of an extra root (none of them is held out)
    plan: list[tuple[Path, list[int] | None]] = [
        (cfg.dataset_root, _training_episodes(cfg.checkpoint, cfg.dataset_root))
    ]
    plan += [(root, None) for root in cfg.extra_dataset_roots]
    frames, states, actions, sources = [], [], [], []
    for root, chosen in plan:
        records = episode_records(root)
        eps = (sorted(records) if chosen is None else chosen)[: cfg.max_episodes_per_root]
        env = env_for_dataset(root, policy.config.image_size_px)
        try:
            episodes = load_episodes(root, policy.config, eps)
            for episode in tqdm(episodes, desc=f"corrections {root.name}", mininterval=5.0):
                f, q, a = collect_episode(
                    policy,
                    env,
                    records[episode.episode_index],
                    episode,
                    rng,
                    cfg.action_noise_std_rad,
                    cfg.goal_arm_noise_rad,
                    goal_rng,
                )
                frames.append(f)
                states.append(q)
                actions.append(a)
            sources.append({"dataset_root": str(root), "episodes": eps})
        finally:
            env.close()
    metadata = {
        "checkpoint": str(cfg.checkpoint),
        "sources": sources,
        "action_noise_std_rad": cfg.action_noise_std_rad,
        "goal_arm_noise_rad": cfg.goal_arm_noise_rad,
        "seed": cfg.seed,
    }
    arrays = {
        "frames": np.concatenate(frames),
        "state_rad": np.concatenate(states),
        "actions_rad": np.concatenate(actions),
        "metadata_json": np.array(json.dumps(metadata)),
    }
    write_npz_atomic(cfg.output, arrays)
    logger.info("wrote %d correction samples to %s", arrays["frames"].shape[0], cfg.output)
    return {"num_samples": int(arrays["frames"].shape[0]), "output": str(cfg.output)}


@cli_main("executor-idm-corrections")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging("%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(CollectCorrectionsConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    summary = collect(cfg)
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
