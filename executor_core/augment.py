"""Training-time image augmentation shared by the models that learn from camera frames.

:func:`random_shift` is the random-translation augmentation of DrQ: pad each image by
``pad_px`` with its border pixels and crop it back at a random offset, so a model trained
on few demonstrations cannot key on exact pixel positions (and a small camera move looks
like data it has seen). Everything behind the batch dimension moves together: a clip's
frames (the IDM) get one shift, so the motion between them is untouched.

:func:`color_jitter` changes a clip's brightness and colour balance (one change for all its
frames). :func:`resize_square` resizes a batch of square images the way
:func:`executor_core.frames.center_crop_resize` resizes one camera frame at run time
(bilinear with half-pixel centres when enlarging, area averaging when shrinking), so a
model trained on resized images sees the same pixels when it runs.
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


def color_jitter(x: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """``x`` (B, ..., 3, H, W) in [-1, 1] with one random gain (1 +- ``amount``) and one
    random bias per colour (+- ``amount``) per batch element, kept in [-1, 1]. ``amount`` 0
    returns ``x`` unchanged and draws nothing."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"color_jitter must be in [0, 1), got {amount!r}")
    if amount == 0:
        return x
    b, lead = x.shape[0], x.dim() - 4  # the axes between the batch and the colours
    gain = 1 + amount * (2 * torch.rand(b, *[1] * (lead + 3), generator=generator) - 1)
    bias = amount * (2 * torch.rand(b, *[1] * lead, 3, 1, 1, generator=generator) - 1)
    return (x * gain + bias).clamp(-1, 1)


def resize_square(images: torch.Tensor, size_px: int) -> torch.Tensor:
    """``images`` (B, ..., S, S) float -> (B, ..., size_px, size_px); unchanged when the side
    is already ``size_px``."""
    if size_px <= 0:
        raise ValueError(f"size_px must be > 0, got {size_px!r}")
    if images.dim() < 3 or not images.is_floating_point() or images.shape[-1] != images.shape[-2]:
        raise ValueError(
            f"resize_square needs (B, ..., S, S) float images, got {tuple(images.shape)} "
            f"{images.dtype}"
        )
    side = images.shape[-1]
    if side == size_px:
        return images
    flat = images.reshape(-1, 1, side, side)
    if size_px > side:
        out = torch.nn.functional.interpolate(
            flat, size=(size_px, size_px), mode="bilinear", align_corners=False
        )
    else:
        out = torch.nn.functional.interpolate(flat, size=(size_px, size_px), mode="area")
    return out.reshape(*images.shape[:-2], size_px, size_px)
