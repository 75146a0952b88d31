"""The SFT baseline's data: the scripted expert's clips of the training items, short prompt.

The seed paper's baseline is the same architecture fine-tuned on real task videos with the
short prompt. In the simulator the expert's episodes are those videos: for each training
item (the scenes and tasks distillation draws its demonstrations from, with the held-out
compositions already left out by ``executor-propose``) the expert runs from the item's
initial state, and the clip is taken as the video models' training clips are
(``video_models.clips_executor.clip_frame_indices``: ``num_frames`` frames every
``frame_stride`` control steps from the start, padded with the last frame), at the camera
resolution the items were rendered at. Only episodes the task predicate accepts are kept.

With ``windows`` > 1 each episode also gives clips that start part-way through the
expert's motion. The closed loop re-imagines from the frame the camera sees after each
executed chunk, with the arm over the cube or the cube in the jaws; clips from the initial
state alone never condition the model on such a frame. Each clip's count of frames that
show the expert moving comes with it, so training can leave the finished task held still
out of the loss.
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
from video_models.clips_executor import clip_frame_indices, clip_valid_frames

logger = logging.getLogger(__name__)


def window_starts(done_step: int, windows: int) -> list[int]:
    """Control steps at which ``windows`` clips start, evenly spaced over the expert's
    motion (``done_step`` steps): 0 first, every start before the expert is done."""
    if windows < 1 or done_step < 0:
        raise ValueError(f"need windows >= 1 and done_step >= 0, got {windows!r}, {done_step!r}")
    return sorted({(i * done_step) // windows for i in range(windows)})


def expert_clip(
    env: TabletopEnv, item: TaskItem, num_frames: int, frame_stride: int, windows: int = 1
) -> tuple[list[np.ndarray], list[int], bool]:
    """The expert's clips of ``item`` ((T, S, S, 3) uint8 each), how many leading frames of
    each show the expert moving (up to the first frame of it done; after that the world is
    held still, rendered or padded) and whether the task succeeded.

    ``windows`` = 1: the one clip from the initial state. More: clips that start at
    :func:`window_starts` of the expert's motion too, each conditioned on the frame the
    camera saw there: what a closed loop re-imagines from once the arm has moved.
    """
    task = task_for_item(env, item)
    policy = expert_policy(env, task)
    length = (num_frames - 1) * frame_stride + 1
    obs = env.observation()
    images = []
    # one clip: exactly its length; more: on until the expert is done (a later window is
    # padded with the last frame, as a short episode is: the world stays still)
    cap = 10 * length  # the expert is done long before (it gives up a push in time)
    while len(images) < length or (windows > 1 and not policy.done and len(images) < cap):
        images.append(obs["image"])
        obs = env.step(policy(env))
    success = bool(task.is_success(env))
    # an expert stopped by the cap has moved all along: the windows spread over all of it
    motion_steps = policy.done_step if policy.done else len(images) - 1
    starts = [0] if windows == 1 else window_starts(motion_steps, windows)
    clips, valid = [], []
    for start in starts:
        steps = clip_frame_indices(len(images) - start, num_frames, frame_stride)
        clips.append(np.stack([images[start + s] for s in steps]))
        # real motion: up to the first frame of the finished task (then held, or padded)
        valid.append(clip_valid_frames(motion_steps - start + 1, num_frames, frame_stride))
    return clips, valid, success


def expert_clips(
    items: Sequence[TaskItem],
    num_frames: int,
    frame_stride: int,
    image_size_px: int,
    windows: int = 1,
) -> tuple[list[np.ndarray], list[int], list[TaskItem]]:
    """The expert's successful clips of ``items`` (``windows`` per item, see
    :func:`expert_clip`), each clip's frames of motion and the item it belongs to."""
    if num_frames < 2 or frame_stride < 1 or windows < 1:
        raise ValueError(
            f"need num_frames >= 2, frame_stride >= 1 and windows >= 1, got "
            f"{num_frames!r}, {frame_stride!r}, {windows!r}"
        )
    env = make_env(image_size_px)
    clips, valid, kept = [], [], []
    t0 = time.perf_counter()
    try:
        for item in items:
            item_clips, item_valid, success = expert_clip(
                env, item, num_frames, frame_stride, windows
            )
            if success:
                clips.extend(item_clips)
                valid.extend(item_valid)
                kept.extend([item] * len(item_clips))
            else:
                logger.info("expert failed %s (%r): clip left out", item.item_id, item.prompt)
    finally:
        env.close()
    logger.info(
        "expert clips: %d of %d items successful, %d clips (%.1f s)",
        len(set(i.item_id for i in kept)),
        len(items),
        len(clips),
        time.perf_counter() - t0,
    )
    return clips, valid, kept
