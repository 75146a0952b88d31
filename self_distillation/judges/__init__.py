"""Video judges: did the (imagined or real) video solve the task?"""

from self_distillation.judges.base import JudgeVerdict, VideoJudge
from self_distillation.judges.execution_aware import (
    ExecutionAwareJudge,
    ExecutionAwareJudgeConfig,
    ExecutionAwareVerdict,
)
from self_distillation.judges.programmatic import ProgrammaticJudge, ProgrammaticJudgeConfig
from self_distillation.judges.vlm import MalformedReplyError, VLMJudge, VLMJudgeConfig

__all__ = [
    "ExecutionAwareJudge",
    "ExecutionAwareJudgeConfig",
    "ExecutionAwareVerdict",
    "JudgeVerdict",
    "MalformedReplyError",
    "ProgrammaticJudge",
    "ProgrammaticJudgeConfig",
    "VLMJudge",
    "VLMJudgeConfig",
    "VideoJudge",
]
