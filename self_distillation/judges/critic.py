"""A judge of imagined videos as the goal runner's critic (``executor_core.policy.VideoCritic``).

With ``GoalRunnerConfig.num_candidates`` > 1 the runner imagines several videos per segment
and tracks the one its critic rates best. A critic judges at run time, so only judges that
read the imagined frames and the prompt qualify (``CRITIC_JUDGES``): the executed judge
runs the simulator, the VLM judge needs a server and its config. Both read the objects by
the simulator's colours; on another scene they need that scene's colours. This module
imports no simulator: ``executor_node`` makes its critic here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from executor_core.policy import Critique, VideoCritic
from self_distillation.judges.execution_aware import ExecutionAwareJudge
from self_distillation.judges.programmatic import ProgrammaticJudge

CRITIC_JUDGES: tuple[str, ...] = ("execution_aware", "programmatic")


class JudgeCritic:
    """A video judge as a critic: it reads the imagined frames and an episode record made
    of the prompt the runner gives over ``episode`` (nothing by default: the prompt alone,
    as on the robot)."""

    def __init__(self, judge: Any, episode: dict[str, Any] | None = None) -> None:
        if not callable(getattr(judge, "judge", None)):
            raise ValueError(f"{type(judge).__name__} has no judge(frames, episode)")
        self.judge, self.episode = judge, dict(episode or {})

    def critique(self, video: np.ndarray, prompt: str) -> Critique:
        verdict = self.judge.judge(video, {**self.episode, "prompt": prompt})
        return Critique(bool(verdict.success), float(verdict.score), str(verdict.reason))


def check_critic_judge(judge: str) -> str:
    if judge not in CRITIC_JUDGES:
        raise ValueError(f"candidate_judge must be one of {list(CRITIC_JUDGES)}, got {judge!r}")
    return judge


def make_critic(judge: str, num_candidates: int) -> VideoCritic | None:
    """The critic that picks among ``num_candidates`` imagined videos (None for one)."""
    check_critic_judge(judge)
    if num_candidates <= 1:
        return None
    made = ExecutionAwareJudge() if judge == "execution_aware" else ProgrammaticJudge()
    return JudgeCritic(made)
