"""Pixels in and out of the video world model, and the first-frame conditioning tensors.

Image policy (shared with the IDM through ``executor_core.frames``): a ROS camera image of
any size is centre-cropped to a square with its shorter side, then area-resized to
``size_px``. Inside the model pixels are float in [-1, 1]; videos leave as
``(T, H, W, 3) uint8``.

First-frame conditioning follows Wan2.1-I2V so that pretrained Wan weights work unchanged:
the "condition video" is the first frame followed by black frames, encoded like the video
itself (identity in pixel space, the VAE in latent space), and a binary mask says which
(un-compressed) frames are given. The transformer sees ``cat([noisy, mask, condition])``.
"""

from __future__ import annotations

import numpy as np
import torch

from executor_core.frames import center_crop_resize, from_model_range, to_model_range


def images_to_tensor(images_rgb: list[np.ndarray], size_px: int) -> torch.Tensor:
    """B camera images (H, W, 3) uint8, any size -> (B, 3, size_px, size_px) float in [-1, 1]."""
    if not images_rgb:
        raise ValueError("got an empty list of images")
    squares = []
    for i, image in enumerate(images_rgb):
        if not isinstance(image, np.ndarray):
            raise TypeError(f"image {i} must be a numpy array, got {type(image).__name__}")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image {i} must be an (H, W, 3) uint8 RGB array, got shape {image.shape!r} "
                f"dtype {image.dtype!r}"
            )
        squares.append(center_crop_resize(image, size_px))
    batch = to_model_range(np.stack(squares))  # (B, S, S, 3)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def clips_to_tensor(clips_uint8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float in [-1, 1] (diffusers video layout)."""
    clips = torch.as_tensor(clips_uint8)
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != torch.uint8:
        raise ValueError(
            f"clips must be (B, T, H, W, 3) uint8, got shape {tuple(clips.shape)!r} "
            f"dtype {clips.dtype!r}"
        )
    return (clips.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0).contiguous()


def tensor_to_clips(video: torch.Tensor) -> np.ndarray:
    """(B, 3, T, H, W) float in [-1, 1] -> (B, T, H, W, 3) uint8."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"video must be (B, 3, T, H, W), got {tuple(video.shape)!r}")
    arr = video.detach().float().permute(0, 2, 3, 4, 1).cpu().numpy()
    return from_model_range(arr)


def condition_video(first_frame: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, num_frames, H, W): the first frame, then black (zeros)."""
    b, c, h, w = first_frame.shape
    rest = first_frame.new_zeros(b, c, num_frames - 1, h, w)
    return torch.cat([first_frame[:, :, None], rest], dim=2)


def first_frame_mask(
    batch: int,
    num_frames: int,
    height: int,
    width: int,
    temporal_scale: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Mask of given frames, folded like the VAE folds time.

    Returns (B, temporal_scale, T_latent, height, width) with
    ``T_latent = (num_frames - 1) // temporal_scale + 1``. The first (given) frame is
    repeated ``temporal_scale`` times so that it fills the first latent frame's channels,
    exactly as Wan2.1-I2V builds it; in pixel space ``temporal_scale == 1`` and this is a
    single channel that is 1 on frame 0.
    """
    mask = torch.zeros(batch, 1, num_frames, height, width, device=device, dtype=dtype)
    mask[:, :, 0] = 1.0
    first = mask[:, :, :1].repeat_interleave(temporal_scale, dim=2)
    mask = torch.cat([first, mask[:, :, 1:]], dim=2)  # (B, 1, T + scale - 1, h, w)
    t_latent = (num_frames - 1) // temporal_scale + 1
    mask = mask.view(batch, t_latent, temporal_scale, height, width)
    return mask.transpose(1, 2).contiguous()
