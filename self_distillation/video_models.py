"""Loading the video world models the method stages use (Demonstrator, Executor, reference).

A saved pipeline folder is the normal case (``ExecutorVideoPipeline.from_pretrained``, the
one way to load one). Without one, the ``debug`` stages build a fresh random pipeline from a
model preset so that the whole method runs end to end on tiny models; that is logged as a
warning because its videos mean nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from video_models.configuration_executor import MODEL_PRESETS
from video_models.modeling_executor import build_pipeline
from video_models.pipeline_executor import ExecutorVideoPipeline

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_video_pipeline(
    path: Path | None, model_preset: str, device: str = "auto", seed: int = 0
) -> ExecutorVideoPipeline:
    """The pipeline saved at ``path``, or (``path`` None) a fresh one from ``model_preset``;
    on ``device`` ("auto": CUDA if there is one), progress bar off."""
    if path is not None:
        pipe = ExecutorVideoPipeline.from_pretrained(path)
    elif model_preset in MODEL_PRESETS:
        logger.warning(
            "no pipeline path given: building a RANDOM %r pipeline (debug only)", model_preset
        )
        pipe = build_pipeline(MODEL_PRESETS[model_preset], seed=seed)
    else:
        raise ValueError(f"unknown model preset {model_preset!r}; known: {sorted(MODEL_PRESETS)}")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(resolve_device(device))
