"""Tiny random test doubles of the two models of the policy interface.

They satisfy ``executor_core.policy``'s protocols with random weights: deterministic,
fast, meaningless motion. The executor node uses them only when no model path is given,
and says so loudly; tests and plumbing benchmarks use them on purpose.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from executor_core.frames import center_crop_resize, from_model_range, to_model_range
from executor_core.types import ActionChunk


class TinyRandomVideoModel(nn.Module):
    """Test double of the Executor pipeline: random conv weights, no training.

    Frame k is the input frame plus k times a small learned-free perturbation, so the
    video is deterministic in (image, prompt, seed) and changes over time.
    """

    def __init__(self, size_px: int = 32, num_frames: int = 5, width: int = 8) -> None:
        super().__init__()
        if size_px < 8 or num_frames < 2:
            raise ValueError(
                f"need size_px >= 8 and num_frames >= 2, got {size_px!r}, {num_frames!r}"
            )
        self.size_px, self.num_frames = size_px, num_frames
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, 3, 3, padding=1)
        )

    @torch.no_grad()
    def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        gen = torch.Generator().manual_seed(int(seed) + sum(map(ord, prompt)))
        x = torch.from_numpy(to_model_range(center_crop_resize(image_rgb, self.size_px)))
        x = x.permute(2, 0, 1)[None]  # (1, 3, S, S)
        frames = [x]
        for _ in range(self.num_frames - 1):
            noise = 0.05 * torch.randn(x.shape, generator=gen)
            frames.append(torch.tanh(frames[-1] + 0.1 * self.net(frames[-1]) + noise))
        video = torch.cat(frames).permute(0, 2, 3, 1).numpy()  # (T, S, S, 3)
        return from_model_range(video)


class TinyRandomInverseDynamics(nn.Module):
    """Test double of the IDM: a random MLP on a frame pair.

    Its output is a bounded offset (tanh x ``max_step_rad``) from the current joint
    state, so random weights still give a trajectory within the arm's velocity limit.
    """

    def __init__(
        self,
        joint_names: tuple[str, ...],
        home_rad: np.ndarray,  # (J,)
        chunk_size: int = 4,
        control_rate_hz: float = 10.0,
        size_px: int = 16,
        max_step_rad: float = 0.02,
    ) -> None:
        super().__init__()
        self.joint_names = tuple(joint_names)
        self.home_rad = np.asarray(home_rad, dtype=np.float64)
        self.chunk_size, self.control_rate_hz = chunk_size, control_rate_hz
        self.size_px, self.max_step_rad = size_px, max_step_rad
        n = len(self.joint_names)
        self.net = nn.Sequential(
            nn.Linear(2 * 3 * size_px * size_px, 32), nn.SiLU(), nn.Linear(32, chunk_size * n)
        )

    @torch.no_grad()
    def predict(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> list[ActionChunk]:
        n = len(self.joint_names)
        q = self.home_rad if joint_positions_rad is None else np.asarray(joint_positions_rad)
        small = np.stack([center_crop_resize(f, self.size_px) for f in frames])
        x = torch.from_numpy(to_model_range(small)).flatten(1)  # (T, 3*S*S)
        chunks = []
        for t in range(frames.shape[0] - 1):
            out = self.net(torch.cat([x[t], x[t + 1]])[None]).reshape(self.chunk_size, n)
            steps = self.max_step_rad * torch.tanh(out).numpy().astype(np.float64)
            targets = q[None] + np.cumsum(steps, axis=0)  # (H, J)
            q = targets[-1]
            chunks.append(
                ActionChunk(targets.astype(np.float32), self.control_rate_hz, self.joint_names)
            )
        return chunks

    def predict_chunk(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> ActionChunk:
        """Closed-loop use, as ``InverseDynamicsPolicy.predict_chunk``: [current, goal]."""
        if frames.ndim != 4 or frames.shape[0] != 2:
            raise ValueError(f"predict_chunk needs (2, H, W, 3) frames, got {frames.shape!r}")
        return self.predict(frames, joint_positions_rad)[0]
