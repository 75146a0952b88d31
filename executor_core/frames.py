"""The one image policy shared by the Executor, the Demonstrator and the IDM.

A ROS camera delivers any size; models want a fixed square. We centre-crop to a square
with the shorter side (no distortion of the scene geometry the IDM relies on), then
resize with area interpolation (no aliasing when shrinking 480p to 64 px).
"""

from __future__ import annotations

import cv2
import numpy as np


def center_crop_resize(image_rgb: np.ndarray, size_px: int) -> np.ndarray:
    """(H, W, 3) uint8 of any size -> (size_px, size_px, 3) uint8."""
    if not isinstance(image_rgb, np.ndarray) or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(
            f"expected an (H, W, 3) RGB image, got shape {getattr(image_rgb, 'shape', None)!r}"
        )
    if image_rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image_rgb.dtype!r}")
    if size_px <= 0:
        raise ValueError(f"size_px must be > 0, got {size_px!r}")
    h, w = image_rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image_rgb[top : top + side, left : left + side]
    if side == size_px:
        return np.ascontiguousarray(square)
    interp = cv2.INTER_AREA if side > size_px else cv2.INTER_LINEAR
    return cv2.resize(square, (size_px, size_px), interpolation=interp)


def to_model_range(frames_uint8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (diffusers' pixel convention)."""
    return frames_uint8.astype(np.float32) / 127.5 - 1.0


def from_model_range(frames: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255], rounding; values outside are saturated on purpose
    because a generated pixel slightly past white is still white."""
    return np.clip(np.rint((frames + 1.0) * 127.5), 0, 255).astype(np.uint8)


def resample_frames(frames: np.ndarray, num_frames: int) -> np.ndarray:
    """``num_frames`` frames evenly spread over ``frames`` (first and last included)."""
    if num_frames < 1 or len(frames) < 1:
        raise ValueError(f"need num_frames >= 1 and a frame, got {num_frames!r}, {len(frames)}")
    idx = np.round(np.linspace(0, len(frames) - 1, num_frames)).astype(int)
    return frames[idx]
