"""The one callable the goal runner uses: ``model(image_rgb, prompt, seed) -> frames``.

model = VideoWorldModel.from_pretrained("checkpoints/executor_sim", device="cpu")
frames = model(image_rgb, "put the red cube in the bowl", seed=0)  # (T, S, S, 3) uint8

Real scale: ``VideoWorldModel.from_local(folder, device="cuda")`` also takes the folder a
LoRA run exports (``executor_lora.json`` + adapter): the preset's base weights are loaded
from the local folder it names (or ``base_dir``) and the adapter goes on the transformer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from video_models.modeling_executor import load_local_pipeline
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

    @classmethod
    def from_local(
        cls, path: str | Path, device: str = "auto", base_dir: str | Path | None = None
    ) -> VideoWorldModel:
        """Any preset from a local folder on ``device`` ("auto": CUDA if there is one): a
        saved pipeline, or a LoRA export (its ``executor_lora.json`` names the preset and
        the base folder; ``base_dir`` overrides where the base is on this machine)."""
        pipe = load_local_pipeline(path, device=device, base_dir=base_dir)
        pipe.transformer.requires_grad_(False).eval()
        return cls(pipe)

    def warm_up(self, prompt: str = "put the red cube in the bowl") -> float:
        """One imagined video from a black frame (kernels, allocator, offload hooks), so the
        first goal does not pay for them; returns its seconds."""
        start = time.perf_counter()
        self(np.zeros((self.size_px, self.size_px, 3), np.uint8), prompt, seed=0)
        return time.perf_counter() - start

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
