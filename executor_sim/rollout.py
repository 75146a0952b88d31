"""One expert episode in memory: frames, joint states, actions and metadata.

Kept apart from the dataset writer so that worker processes can roll out episodes and
the parent alone writes the LeRobotDataset (its writer is not multi-process safe).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from executor_sim.env import EnvConfig, TabletopEnv, make_env
from executor_sim.expert import expert_policy

logger = logging.getLogger(__name__)


@dataclass
class Episode:
    images: np.ndarray  # (T, H, W, 3) uint8 scene camera, frame t before action t
    states_rad: np.ndarray  # (T, 6) float32 measured joint positions at frame t
    actions_rad: np.ndarray  # (T, 6) float32 joint targets commanded after frame t
    metadata: dict[str, Any]  # task texts, scene, seed, success, expert_done_frame

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        return {
            "images": self.images,
            "states_rad": self.states_rad,
            "actions_rad": self.actions_rad,
            "metadata_json": np.array(json.dumps(self.metadata)),
        }

    @classmethod
    def from_npz(cls, data: Any) -> Episode:
        return cls(
            images=data["images"],
            states_rad=data["states_rad"],
            actions_rad=data["actions_rad"],
            metadata=json.loads(str(data["metadata_json"])),
        )


def rollout_expert(env: TabletopEnv, seed: int, family: str | None, num_frames: int) -> Episode:
    """Reset with ``seed`` and record ``num_frames`` frames of the scripted expert, holding
    still after it finishes. The success predicate is evaluated after the last action."""
    obs = env.reset(seed, task_family=family)
    policy = expert_policy(env)
    images, states, actions = [], [], []
    for _ in range(num_frames):
        action = policy(env)
        images.append(obs["image"])
        states.append(obs["state"])
        actions.append(action.astype(np.float32))
        obs = env.step(action)
    task = env.task
    assert task is not None
    assert env.scene is not None
    success = task.is_success(env)
    if not success:
        logger.info(
            "seed %d: expert failed %r (finished at step %s)", seed, task.prompt, policy.done_step
        )
    metadata = {
        **task.to_json(),
        "success": bool(success),
        "seed": int(seed),
        "scene": env.scene.to_json(),
        # First frame at which the expert only holds still (num_frames if it never did).
        "expert_done_frame": int(policy.done_step if policy.done else num_frames),
        "expert_finished": bool(policy.done),
        "expert_ik_failures": int(policy.ik_failures),
        "clipped_actions": int(env.num_clipped_actions),
    }
    return Episode(np.stack(images), np.stack(states), np.stack(actions), metadata)


_WORKER_ENV: TabletopEnv | None = None


def worker_rollout(args: tuple[EnvConfig, int, str | None, int]) -> Episode:
    """Process-pool entry: one env per worker process, reused across episodes."""
    global _WORKER_ENV
    cfg, seed, family, num_frames = args
    if _WORKER_ENV is None or _WORKER_ENV.cfg != cfg:
        _WORKER_ENV = make_env(cfg)
    _WORKER_ENV.num_clipped_actions = 0
    return rollout_expert(_WORKER_ENV, seed, family, num_frames)
