"""A tiny synthetic LeRobotDataset v3 (video + executor_episodes.jsonl), written with lerobot.

Each episode shows a coloured square moving right one pixel per step, so the decoded clip's
frame k must show the square at column ``start + k * frame_stride`` (checkable).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from executor_core.video_io import keep_thread_scheduling

SIZE_PX = 32


def frame_at(step: int, color: tuple[int, int, int]) -> np.ndarray:
    img = np.full((SIZE_PX, SIZE_PX, 3), 90, np.uint8)
    col = min(step, SIZE_PX - 3)
    img[6:10, col : col + 3] = color
    return img


def make_tiny_dataset(root: Path, lengths: tuple[int, ...] = (9, 5, 9)) -> Path:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.images.scene": {
            "dtype": "video",
            "shape": (SIZE_PX, SIZE_PX, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.state": {"dtype": "float32", "shape": (6,), "names": None},
        "action": {"dtype": "float32", "shape": (6,), "names": None},
    }
    ds = LeRobotDataset.create(
        "local/tiny_video", fps=10, features=features, root=root, use_videos=True
    )
    colors = [(220, 30, 30), (30, 60, 220), (30, 190, 40)]
    records = []
    for ep, length in enumerate(lengths):
        prompt = [
            "put the red cube in the bowl",
            "push the blue cube onto the cyan mat",
            "stack the green cube on the red cube",
        ][ep % 3]
        for step in range(length):
            ds.add_frame(
                {
                    "observation.images.scene": frame_at(step, colors[ep % 3]),
                    "observation.state": np.zeros(6, np.float32),
                    "action": np.zeros(6, np.float32),
                    "task": prompt,
                }
            )
        with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
            ds.save_episode()
        records.append(
            {
                "episode_index": ep,
                "task_family": "pick_place",
                "prompt": prompt,
                "paraphrases": [],
                "solution": f"1. step one of {prompt}. 2. done.",
                "success_criterion": "x",
                "success": True,
                "seed": ep,
                "scene": {},
            }
        )
    with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
        ds.finalize()
    (root / "meta" / "executor_episodes.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records)
    )
    return root
