"""Training-time image augmentation shared by the models that learn from camera frames.

:func:`random_shift` is the random-translation augmentation of DrQ: pad each image by
``pad_px`` with its border pixels and crop it back at a random offset, so a model trained
on few demonstrations cannot key on exact pixel positions (and a small camera move looks
like data it has seen). Everything behind the batch dimension moves together: a clip's
frames (the IDM) get one shift, so the motion between them is untouched.
"""

from __future__ import annotations

import torch


def random_shift(images: torch.Tensor, pad_px: int, generator: torch.Generator) -> torch.Tensor:
    """``images`` (B, ..., H, W) float, shifted by up to ``pad_px`` per axis, one shift per
    batch element; the same shape back. ``pad_px`` 0 returns the images unchanged."""
    if pad_px < 0:
        raise ValueError(f"pad_px must be >= 0, got {pad_px!r}")
    if pad_px == 0:
        return images
    if images.dim() < 3 or not images.is_floating_point():
        raise ValueError(
            f"random_shift needs (B, ..., H, W) float images, got {tuple(images.shape)} "
            f"{images.dtype}"
        )
    b, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    flat = images.reshape(b, -1, height, width)
    padded = torch.nn.functional.pad(flat, (pad_px, pad_px, pad_px, pad_px), mode="replicate")
    offsets = torch.randint(0, 2 * pad_px + 1, (b, 2), generator=generator)
    shifted = torch.stack(
        [
            padded[i, :, oy : oy + height, ox : ox + width]
            for i, (oy, ox) in enumerate(offsets.tolist())
        ]
    )
    return shifted.view_as(images)
