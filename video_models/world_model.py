"""The one callable the goal runner uses: ``model(image_rgb, prompt, seed) -> frames``.

model = VideoWorldModel.from_pretrained("checkpoints/executor_sim", device="cpu")
frames = model(image_rgb, "put the red cube in the bowl", seed=0)  # (T, S, S, 3) uint8
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from video_models.pipeline_executor import ExecutorVideoPipeline

logger = logging.getLogger(__name__)


class VideoWorldModel:
    """Wraps an :class:`ExecutorVideoPipeline` behind one call (the ``VideoModel`` protocol of
    ``executor_core.policy``): no progress bar, no autograd."""

    def __init__(self, pipeline: ExecutorVideoPipeline) -> None:
        self.pipeline = pipeline
        self.pipeline.set_progress_bar_config(disable=True)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device = "cpu"
    ) -> VideoWorldModel:
        """A saved pipeline folder (local, safetensors only) on ``device``."""
        return cls(ExecutorVideoPipeline.from_pretrained(path).to(device))

    @property
    def num_frames(self) -> int:
        return int(self.pipeline.config.num_frames)

    @property
    def size_px(self) -> int:
        return int(self.pipeline.config.size_px)

    def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int = 0) -> np.ndarray:
        """(H, W, 3) uint8 camera image of any size -> (T, S, S, 3) uint8 imagined video.

        A prompt over the text encoder's ``max_text_tokens`` is a ValueError naming its
        token count (the goal runner aborts the goal with it); it is never cut.
        """
        with torch.inference_mode():
            return self.pipeline(image_rgb, prompt, seed=seed).frames[0]
