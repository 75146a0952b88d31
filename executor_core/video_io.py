"""Videos on disk: (T, H, W, 3) uint8 RGB frames to mp4, written atomically, and back; and the
scheduling guard every LeRobot dataset writer of ours encodes its videos under."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from executor_core.atomic_io import atomic_path
from executor_core.config_cli import require_positive

logger = logging.getLogger(__name__)


def save_video_mp4(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames to mp4 atomically (temp file, then rename)."""
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape!r}")
    require_positive("fps", fps)
    with atomic_path(path) as tmp:
        h, w = frames.shape[1:3]
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise OSError(f"OpenCV could not open an mp4 writer for {tmp}")
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV wants BGR
        writer.release()
    return path


def read_video_mp4(path: str | Path) -> np.ndarray:
    """Every frame of a video file as (T, H, W, 3) uint8 RGB (``save_video_mp4``'s inverse,
    up to the codec's loss)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame[..., ::-1])  # OpenCV gives BGR
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"{path}: no frame could be decoded")
    return np.ascontiguousarray(np.stack(frames))


@contextlib.contextmanager
def keep_thread_scheduling() -> Iterator[None]:
    """Give the calling thread back the scheduling policy it had on entry.

    The SVT-AV1 encoder (LeRobot's default video codec, ``libsvtav1``, through PyAV)
    switches the thread that opens it to real-time ``SCHED_FIFO`` priority 99 wherever it
    may (root, CAP_SYS_NICE), and every thread and process started from that thread
    afterwards inherits it. Measured here: after one dataset was written in the pytest
    process, its spinning threads and the five node processes it launched ran at FIFO 99 on
    2 cores, and the ordinary-priority Feetech bus double they starved never answered a
    ping. On a robot computer a busy real-time thread can stall the controllers the same
    way. Every ``save_episode`` / ``finalize`` of ours runs inside this guard.
    """
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        if (os.sched_getscheduler(0), os.sched_getparam(0)) != (policy, param):
            logger.debug("the video encoder changed this thread's scheduling; restoring it")
            os.sched_setscheduler(0, policy, param)
