"""random_shift: a translation of each batch element, the same for everything behind the
batch dimension, borders filled with the edge pixels; resize_square: the run-time resize of
a camera frame, batched; bad input named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from executor_core.augment import color_jitter, random_shift, resize_square
from executor_core.frames import center_crop_resize


def test_each_element_is_one_translation_of_itself() -> None:
    images = torch.rand(6, 2, 3, 16, 16)  # (B, frames, C, H, W)
    shifted = random_shift(images, 3, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    moved = 0
    for b in range(6):
        padded = torch.nn.functional.pad(images[b].reshape(-1, 16, 16), (3,) * 4, mode="replicate")
        matches = [
            (dy, dx)
            for dy in range(7)
            for dx in range(7)
            if torch.equal(padded[:, dy : dy + 16, dx : dx + 16], shifted[b].reshape(-1, 16, 16))
        ]
        assert len(matches) == 1  # one offset moves every frame and channel alike
        moved += matches[0] != (3, 3)
    assert moved >= 4  # offsets differ from "no shift" for most elements


def test_zero_pad_is_the_identity_and_the_generator_repeats() -> None:
    images = torch.rand(4, 3, 8, 8)
    assert random_shift(images, 0, torch.Generator()) is images
    a = random_shift(images, 2, torch.Generator().manual_seed(5))
    b = random_shift(images, 2, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("images", "pad", "match"),
    [
        (torch.rand(2, 8, 8), -1, "pad_px must be >= 0, got -1"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 2, r"float images, got \(2, 3, 8, 8\)"),
        (torch.rand(8, 8), 2, r"got \(8, 8\)"),
    ],
)
def test_bad_input_is_named(images: torch.Tensor, pad: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        random_shift(images, pad, torch.Generator())


@pytest.mark.parametrize("size_px", [128, 96, 32])
def test_resize_square_matches_the_run_time_resize(size_px: int) -> None:
    """A policy trained on resize_square's images sees the same pixels from
    center_crop_resize at run time (within the one level of uint8 rounding there)."""
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    batch = torch.from_numpy(frames).permute(0, 3, 1, 2).float()[:, None]  # (B, 1, C, H, W)
    resized = resize_square(batch, size_px)
    assert resized.shape == (2, 1, 3, size_px, size_px)
    for b in range(2):
        run_time = torch.from_numpy(center_crop_resize(frames[b], size_px)).permute(2, 0, 1)
        assert (resized[b, 0] - run_time.float()).abs().max() <= 1.0  # one uint8 level


def test_resize_square_keeps_the_size_and_names_bad_input() -> None:
    images = torch.rand(2, 3, 16, 16)
    assert resize_square(images, 16) is images
    with pytest.raises(ValueError, match="size_px must be > 0, got 0"):
        resize_square(images, 0)
    with pytest.raises(ValueError, match=r"\(2, 3, 16, 8\)"):
        resize_square(torch.rand(2, 3, 16, 8), 32)


def test_color_jitter_is_one_change_per_clip_and_zero_draws_nothing() -> None:
    x = torch.zeros(4, 3, 3, 8, 8)  # (B, frames, C, H, W): mid-grey
    gen = torch.Generator().manual_seed(0)
    out = color_jitter(x, 0.2, gen)
    assert out.shape == x.shape
    assert float(out.abs().max()) <= 0.2
    # one bias per clip and colour, the same on every frame and pixel
    torch.testing.assert_close(out, out[:, :1, :, :1, :1].expand_as(out))
    assert not torch.equal(out[0], out[1])
    state = gen.get_state()
    assert color_jitter(x, 0.0, gen) is x
    assert torch.equal(gen.get_state(), state)
    with pytest.raises(ValueError, match=r"color_jitter must be in \[0, 1\), got 1.0"):
        color_jitter(x, 1.0, gen)
