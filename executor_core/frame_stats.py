"""Statistics of camera or imagined frames that need no model.

``high_freq_energy`` measures grain: the mean absolute Laplacian of the grey frames. A video
model's frames that are grainier than the rendered first frame they start from carry
artefacts (checkerboard, speckle) that the inverse-dynamics model never saw in training.
"""

from __future__ import annotations

import numpy as np


def high_freq_energy(frames: np.ndarray) -> float:
    """Mean absolute 4-neighbour Laplacian of the grey frames, on the 0-255 scale.

    ``frames``: (T, H, W, 3) or (H, W, 3), uint8 or float on 0-255; H and W at least 3.
    """
    x = np.asarray(frames, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] < 3 or x.shape[2] < 3 or x.shape[0] == 0:
        raise ValueError(f"frames must be (T, H>=3, W>=3, 3) with T >= 1, got {x.shape!r}")
    grey = x.mean(axis=-1)
    lap = (
        grey[:, :-2, 1:-1]
        + grey[:, 2:, 1:-1]
        + grey[:, 1:-1, :-2]
        + grey[:, 1:-1, 2:]
        - 4 * grey[:, 1:-1, 1:-1]
    )
    return float(np.abs(lap).mean())


def grain_excess(video: np.ndarray) -> float:
    """``high_freq_energy`` of a video's frames after the first minus that of its first
    (conditioning) frame: about 0 for a clean rendering, positive for added grain."""
    video = np.asarray(video)
    if video.ndim != 4 or len(video) < 2:
        raise ValueError(f"video must be (T >= 2, H, W, 3), got {video.shape!r}")
    return high_freq_energy(video[1:]) - high_freq_energy(video[:1])
