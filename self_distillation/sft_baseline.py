"""The SFT baseline's data: the scripted expert's clips of the training items, short prompt.

The seed paper's baseline is the same architecture fine-tuned on real task videos with the
short prompt. In the simulator the expert's episodes are those videos: for each training
item (the scenes and tasks distillation draws its demonstrations from, with the held-out
compositions already left out by ``executor-propose``) the expert runs from the item's
initial state, and the clip is taken as the video models' training clips are
(``video_models.clips_executor.clip_frame_indices``: ``num_frames`` frames every
``frame_stride`` control steps from the start, padded with the last frame), at the camera
resolution the items were rendered at. Only episodes the task predicate accepts are kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from executor_sim.env import TabletopEnv
from executor_sim.expert import expert_policy
from self_distillation.closed_loop import make_env, task_for_item
from self_distillation.task_items import TaskItem
from video_models.clips_executor import clip_frame_indices

logger = logging.getLogger(__name__)


def expert_clip(
    env: TabletopEnv, item: TaskItem, num_frames: int, frame_stride: int
) -> tuple[np.ndarray, bool]:
    """The expert's clip of ``item`` ((T, S, S, 3) uint8) and whether the task succeeded."""
    task = task_for_item(env, item)
    policy = expert_policy(env, task)
    length = (num_frames - 1) * frame_stride + 1
    obs = env.observation()
    images = []
    for _ in range(length):
        images.append(obs["image"])
        obs = env.step(policy(env))
    success = bool(task.is_success(env))
    steps = clip_frame_indices(length, num_frames, frame_stride)
    return np.stack([images[s] for s in steps]), success


def expert_clips(
    items: Sequence[TaskItem], num_frames: int, frame_stride: int, image_size_px: int
) -> tuple[list[np.ndarray], list[TaskItem]]:
    """The expert's successful clips of ``items`` and the items they belong to."""
    if num_frames < 2 or frame_stride < 1:
        raise ValueError(
            f"need num_frames >= 2 and frame_stride >= 1, got {num_frames!r}, {frame_stride!r}"
        )
    env = make_env(image_size_px)
    clips, kept = [], []
    t0 = time.perf_counter()
    try:
        for item in items:
            clip, success = expert_clip(env, item, num_frames, frame_stride)
            if success:
                clips.append(clip)
                kept.append(item)
            else:
                logger.info("expert failed %s (%r): clip left out", item.item_id, item.prompt)
    finally:
        env.close()
    logger.info(
        "expert clips: %d/%d successful (%.1f s)", len(kept), len(items), time.perf_counter() - t0
    )
    return clips, kept
