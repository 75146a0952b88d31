"""The execution critic: imagined frames -> the logit of "the arm executes this video".

A small convolutional encoder reads every frame (with its changes from the previous and the
first frame), 1-D convolutions read the sequence, and mean and max pooling over time feed
one logit. Weights are safetensors with ``config.json`` beside them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from execution_critic.configuration_critic import ExecutionCriticConfig
from executor_core.safe_loading import WEIGHTS_NAME, read_model_folder, save_model_folder

logger = logging.getLogger(__name__)

__all__ = ["WEIGHTS_NAME", "ExecutionCritic", "frame_features"]


def frame_features(x: torch.Tensor, differences: bool) -> torch.Tensor:
    """(B, T, 3, S, S) in [-1, 1] -> (B, T, C, S, S): the colours, and with ``differences``
    the change from the previous frame (zero for the first) and from the first frame."""
    if not differences:
        return x
    previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)
    return torch.cat([x, x - previous, x - x[:, :1]], dim=2)


class ExecutionCritic(nn.Module):
    def __init__(self, config: ExecutionCriticConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        channels = config.in_channels
        for out in config.conv_channels:
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GELU()]
            channels = out
        self.encoder = nn.Sequential(*layers)
        side = config.image_size_px // 2 ** len(config.conv_channels)
        self.project = nn.Linear(channels * side * side, config.temporal_channels)
        width = config.temporal_channels
        self.temporal = nn.ModuleList(
            nn.Conv1d(width, width, 3, padding=1) for _ in range(config.temporal_layers)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * width, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) float in [-1, 1] -> (B,) logits."""
        b, t = frames.shape[:2]
        x = frame_features(frames, self.config.frame_differences)
        h = self.encoder(x.flatten(0, 1)).flatten(1)
        h = nn.functional.gelu(self.project(h)).view(b, t, -1).transpose(1, 2)  # (B, C, T)
        for conv in self.temporal:
            h = h + nn.functional.gelu(conv(h))
        pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.head(self.dropout(pooled)).squeeze(1)

    def save_pretrained(self, directory: str | Path) -> None:
        """``config.json`` + ``model.safetensors``, swapped in whole."""
        save_model_folder(directory, self.config, self)
        logger.info("saved execution critic to %s", directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: object) -> ExecutionCritic:
        """Load from a local folder; only safetensors weights are ever read. ``overrides``
        change run-time fields such as ``accept_threshold``."""
        config, state = read_model_folder(
            directory, ExecutionCriticConfig, "execution critic", **overrides
        )
        model = cls(config)
        model.load_state_dict(state, strict=True)
        model.eval()
        return model
