"""Video judges: did the (imagined or real) video solve the task?"""

from executor_core.judges.base import JudgeVerdict, VideoJudge
from executor_core.judges.programmatic import ProgrammaticJudge, ProgrammaticJudgeConfig

__all__ = ["JudgeVerdict", "ProgrammaticJudge", "ProgrammaticJudgeConfig", "VideoJudge"]
