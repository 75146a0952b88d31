"""Videos on disk: (T, H, W, 3) uint8 RGB frames to mp4, written atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from executor_core.atomic_io import atomic_path


def save_video_mp4(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames to mp4 atomically (temp file, then rename)."""
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    with atomic_path(path) as tmp:
        h, w = frames.shape[1:3]
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise OSError(f"OpenCV could not open an mp4 writer for {tmp}")
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV wants BGR
        writer.release()
    return path
