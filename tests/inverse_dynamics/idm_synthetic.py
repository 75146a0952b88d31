"""A tiny synthetic LeRobotDataset v3 where the joint state is visible in the pixels.

Each joint i is drawn as a bright square in its own row whose column follows the joint
angle, so an IDM can read the motion between two frames, like the real sim but in
milliseconds. Actions are the next state (absolute targets), as the scripted expert records.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.video_io import keep_thread_scheduling

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

SIZE_PX = 64
FPS = 10


def render_state(q_rad: np.ndarray, size_px: int = SIZE_PX) -> np.ndarray:
    """(J,) radians -> (S, S, 3) uint8 with one square marker per joint."""
    img = np.full((size_px, size_px, 3), 30, np.uint8)
    rows = np.linspace(4, size_px - 8, len(q_rad)).astype(int)
    for i, (row, q) in enumerate(zip(rows, q_rad, strict=True)):
        col = int(np.clip((q + 2.0) / 4.0, 0, 1) * (size_px - 6))
        img[row : row + 5, col : col + 5] = (255, 40 * i, 255 - 40 * i)
    return img


def synthetic_episode(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth joint motion: -> states (L, J), actions (L, J) with action[t] = state[t+1]."""
    t = np.arange(length + 1)[:, None] / FPS
    freq = rng.uniform(0.1, 0.4, size=(1, 6))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 6))
    q = (1.2 * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)  # (L+1, J)
    return q[:-1], q[1:]


def write_synthetic_dataset(root: Path, num_episodes: int = 4, length: int = 24) -> Path:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    names = list(RobotDescription.from_yaml(default_robot_path()).joint_names)
    features = {
        "observation.images.scene": {
            "dtype": "video",
            "shape": (SIZE_PX, SIZE_PX, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.state": {"dtype": "float32", "shape": (6,), "names": names},
        "action": {"dtype": "float32", "shape": (6,), "names": names},
    }
    ds = LeRobotDataset.create("local/idm_synthetic", fps=FPS, features=features, root=root)
    rng = np.random.default_rng(0)
    for _ in range(num_episodes):
        states, actions = synthetic_episode(rng, length)
        for q, a in zip(states, actions, strict=True):
            ds.add_frame(
                {
                    "observation.images.scene": render_state(q),
                    "observation.state": q,
                    "action": a,
                    "task": "move",
                }
            )
        with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
            ds.save_episode()
    with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
        ds.finalize()
    return root
