"""``executor_core.frame_stats``: grain measured without a model."""

from __future__ import annotations

import numpy as np
import pytest

from executor_core.frame_stats import grain_excess, high_freq_energy


def _smooth_video(num_frames: int = 4) -> np.ndarray:
    ramp = np.linspace(0, 255, 32, dtype=np.float32)
    frame = np.tile(ramp[None, :, None], (32, 1, 3))
    return np.stack([frame] * num_frames).astype(np.uint8)


def test_grain_raises_the_energy_and_a_clean_video_has_no_excess() -> None:
    video = _smooth_video()
    noise = np.random.default_rng(0).integers(-20, 21, video.shape)
    grainy = video.copy()
    grainy[1:] = np.clip(video[1:].astype(int) + noise[1:], 0, 255).astype(np.uint8)
    assert high_freq_energy(video) < 1.0
    assert high_freq_energy(grainy[1:]) > 20.0
    assert abs(grain_excess(video)) < 1e-6
    assert grain_excess(grainy) > 20.0
    assert high_freq_energy(video[0]) == pytest.approx(high_freq_energy(video[:1]))


def test_a_single_bright_pixel_gives_the_laplacian_by_hand() -> None:
    frame = np.zeros((3, 3, 3), dtype=np.uint8)
    frame[1, 1] = 10  # grey 10 at the centre: Laplacian -40 at the only inner pixel
    assert high_freq_energy(frame) == pytest.approx(40.0)


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match=r"got \(4, 2, 8, 3\)"):
        high_freq_energy(np.zeros((4, 2, 8, 3)))
    with pytest.raises(ValueError, match=r"video must be \(T >= 2, H, W, 3\), got \(1, 8, 8, 3\)"):
        grain_excess(np.zeros((1, 8, 8, 3)))
