"""Which judge a stage uses, and the episode record a judge reads for a task item.

``programmatic`` (the embedded default for simulator scenes) reads object colours and the
task from the record; ``execution_aware`` reads the same colours in every frame and scores
task, agent and consistency (``judges/execution_aware.py``: a teleported, copied or held
cube fails); ``vlm`` asks a VLM (local transformers path or HTTP endpoint) the same three
questions plus DreamGen-Bench's two (``judges/vlm.py``, docs/vlm_judge.md) and returns the
execution-aware judge's verdict type; ``executed`` executes the video in the simulator
(``judges/executed.py``: success = the arm did the task; score = executed and consistency)
and suits simulator items only. All implement ``self_distillation.judges.base.VideoJudge``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from self_distillation.judges.executed import ExecutedJudge, ExecutedJudgeConfig
from self_distillation.judges.execution_aware import ExecutionAwareJudge
from self_distillation.judges.programmatic import ProgrammaticJudge
from self_distillation.judges.vlm import VLMJudge, VLMJudgeConfig
from self_distillation.task_items import TaskItem
from self_distillation.vlm_backends import (
    HTTPVLM,
    HTTPVLMConfig,
    TransformersVLM,
    TransformersVLMConfig,
)

logger = logging.getLogger(__name__)
JUDGE_KINDS: tuple[str, ...] = ("programmatic", "execution_aware", "executed", "vlm")


@dataclass
class JudgeConfig:
    kind: Literal["programmatic", "execution_aware", "executed", "vlm"] = "programmatic"
    vlm_backend: Literal["transformers", "http"] = "transformers"
    vlm: TransformersVLMConfig = field(default_factory=TransformersVLMConfig)
    # greedy by default: a judge (and a GRPO reward) should not be a dice roll
    http: HTTPVLMConfig = field(default_factory=lambda: HTTPVLMConfig(temperature=0.0))
    vlm_judge: VLMJudgeConfig = field(default_factory=VLMJudgeConfig)
    executed: ExecutedJudgeConfig = field(default_factory=ExecutedJudgeConfig)

    def __post_init__(self) -> None:
        if self.kind not in JUDGE_KINDS:
            raise ValueError(f"judge kind must be one of {JUDGE_KINDS}, got {self.kind!r}")
        if self.vlm_backend not in ("transformers", "http"):
            raise ValueError(f"vlm_backend must be transformers/http, got {self.vlm_backend!r}")


def make_judge(cfg: JudgeConfig) -> Any:  # -> VideoJudge
    if cfg.kind == "programmatic":
        return ProgrammaticJudge()
    if cfg.kind == "execution_aware":
        return ExecutionAwareJudge()
    if cfg.kind == "executed":
        return ExecutedJudge(cfg.executed)

    backend = TransformersVLM(cfg.vlm) if cfg.vlm_backend == "transformers" else HTTPVLM(cfg.http)
    return VLMJudge(backend, cfg.vlm_judge)


def judge_videos(
    judge: Any, videos: Sequence[np.ndarray], episodes: Sequence[dict[str, Any]]
) -> list[Any]:  # -> list[JudgeVerdict]
    """Verdicts for many videos: one batched call when the judge offers ``judge_many``
    (the VLM judge), else one ``judge`` call per video."""
    if len(videos) != len(episodes):
        raise ValueError(f"{len(videos)} videos for {len(episodes)} episodes")
    if hasattr(judge, "judge_many"):
        return list(judge.judge_many(videos, episodes))
    return [judge.judge(v, e) for v, e in zip(videos, episodes, strict=True)]


def episode_for_item(item: TaskItem, prompt: str | None = None) -> dict[str, Any]:
    """The ``meta/executor_episodes.jsonl``-style record a judge reads for ``item``
    (``prompt`` overrides the short prompt, e.g. with a paraphrase)."""
    p = item.proposal
    record = {
        "episode_index": item.item_id,
        "prompt": prompt or p.task_prompt,
        "solution": p.solution_text,
        "success_criterion": p.success_description,
        "scene": item.scene,
        "seed": item.seed,
    }
    for key in ("task_family", "object", "target"):
        if key in p.metadata:
            record[key] = p.metadata[key]
    return record
