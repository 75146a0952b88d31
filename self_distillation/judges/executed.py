"""A judge that executes: the video counts if the arm, following it, does the task.

For a simulator episode the video is executed from the initial state it was imagined from
(``executed_success.execute_videos``: the IDM through the robot's goal runner, one segment,
no replanning); the task predicate decides ``success``. The score mixes that outcome with
the execution-aware judge's consistency score, as issue 14 asks of the RL reward:
``score = executed_weight * executed + (1 - executed_weight) * consistency``, so among
videos that all fail (or all succeed) the one without teleports and copies still ranks
higher. ``judge_many`` executes a whole batch at once (a process pool with ``workers``).

Select it with ``--judge.kind executed`` wherever a stage takes a judge: demonstration
selection for distillation, the GRPO reward, the evaluation.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from executor_core.policy import InverseDynamics
from self_distillation.executed_success import (
    ExecutedSuccessConfig,
    ExecutionPool,
    SimStart,
    execute_videos,
    load_idm,
)
from self_distillation.judges.execution_aware import (
    ExecutionAwareJudge,
    ExecutionAwareVerdict,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutedJudgeConfig:
    execution: ExecutedSuccessConfig = field(default_factory=ExecutedSuccessConfig)
    executed_weight: float = 0.5  # score = w * executed + (1 - w) * consistency
    # success also needs the execution-aware consistency score at least this high (0: the
    # video executes, whatever it shows); demonstration selection asks for both
    min_consistency: float = 0.0

    def __post_init__(self) -> None:
        for name in ("executed_weight", "min_consistency"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")


class ExecutedJudge:
    """``success``: the video executes (and is consistent enough, ``min_consistency``);
    ``score``: executed and consistency, weighted."""

    def __init__(
        self, config: ExecutedJudgeConfig | None = None, idm: InverseDynamics | None = None
    ) -> None:
        self.config = config or ExecutedJudgeConfig()
        self.idm = idm if idm is not None else load_idm(self.config.execution)
        self.visual = ExecutionAwareJudge()
        # with workers > 1: started at the first batch, kept for the judge's life (an RL run
        # judges a batch every step), shut down when the judge is collected or at exit
        self._pool: ExecutionPool | None = None

    def _execution_pool(self) -> ExecutionPool | None:
        if self.config.execution.workers < 2:
            return None
        if self._pool is None:
            self._pool = ExecutionPool(self.config.execution, self.idm)
            weakref.finalize(self, self._pool.close)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def judge(self, frames: np.ndarray, episode: dict[str, Any]) -> ExecutionAwareVerdict:
        return self.judge_many([frames], [episode])[0]

    def judge_many(
        self, videos: Sequence[np.ndarray], episodes: Sequence[dict[str, Any]]
    ) -> list[ExecutionAwareVerdict]:
        starts = [SimStart.from_record(e) for e in episodes]
        batch = execute_videos(
            list(videos), starts, self.config.execution, idm=self.idm, pool=self._execution_pool()
        )
        w = self.config.executed_weight
        verdicts = []
        for video, episode, ex in zip(videos, episodes, batch.results, strict=True):
            seen = self.visual.judge(video, episode)
            verdicts.append(
                ExecutionAwareVerdict(
                    success=bool(ex.success) and seen.consistency >= self.config.min_consistency,
                    score=w * float(ex.success) + (1.0 - w) * seen.consistency,
                    reason=f"executed: {ex.message} | {seen.reason}",
                    details={
                        "executed": ex.to_record(),
                        "judged_success": bool(seen.success),
                        "seconds_per_video": batch.seconds_per_video,
                    },
                    task=float(ex.success),
                    agent=seen.agent,
                    consistency=seen.consistency,
                )
            )
        return verdicts
