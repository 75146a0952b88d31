"""The interface every video judge implements (programmatic here, VLM judges elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class JudgeVerdict:
    """Whether a video shows the task solved; ``score`` in [0, 1] for ranking (GRPO)."""

    success: bool
    score: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score!r}")


@runtime_checkable
class VideoJudge(Protocol):
    def judge(self, frames: np.ndarray, episode: dict[str, Any]) -> JudgeVerdict:
        """frames: (T, H, W, 3) uint8 RGB, frame 0 the given first frame; episode: one
        record of ``meta/executor_episodes.jsonl`` (task_family, prompt, scene, ...)."""
        ...
