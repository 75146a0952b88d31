"""A judge of imagined videos as the goal runner's critic (``executor_core.policy.VideoCritic``).

With ``GoalRunnerConfig.num_candidates`` > 1 the runner imagines several videos per segment
and tracks the one its critic rates best. A critic judges at run time, so only judges that
read the imagined frames and the prompt qualify (``CRITIC_JUDGES``): the executed judge
runs the simulator, the VLM judge needs a server and its config. The two judges read the
objects by the simulator's colours; on another scene they need that scene's colours.
``learned`` is the execution critic (``execution_critic``) at ``critic_path``: a model
trained on imagined videos labelled by executing them, which scores each candidate by the
predicted probability that the arm does the task. This module imports no simulator:
``executor_node`` makes its critic here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from execution_critic.processing_critic import LearnedCritic
from executor_core.policy import Critique, VideoCritic
from self_distillation.judges.execution_aware import ExecutionAwareJudge
from self_distillation.judges.programmatic import ProgrammaticJudge

CRITIC_JUDGES: tuple[str, ...] = ("execution_aware", "programmatic", "learned")


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


def check_critic_judge(judge: str, critic_path: str | Path | None = None) -> str:
    """``judge`` if it is a critic judge and ``critic_path`` fits it (the learned critic
    needs its folder; the others take none); a ValueError naming the bad value otherwise."""
    if judge not in CRITIC_JUDGES:
        raise ValueError(f"candidate_judge must be one of {list(CRITIC_JUDGES)}, got {judge!r}")
    path = str(critic_path or "")
    if judge == "learned" and not path:
        raise ValueError("candidate_judge 'learned' needs critic_path (an execution-critic folder)")
    if judge != "learned" and path:
        raise ValueError(
            f"critic_path {path!r} is only read by candidate_judge 'learned', not {judge!r}"
        )
    return judge


def make_critic(
    judge: str, num_candidates: int, critic_path: str | Path | None = None
) -> VideoCritic | None:
    """The critic that picks among ``num_candidates`` imagined videos (None for one)."""
    check_critic_judge(judge, critic_path)
    if num_candidates <= 1:
        return None
    if judge == "learned":
        return LearnedCritic.from_pretrained(Path(str(critic_path)))
    made = ExecutionAwareJudge() if judge == "execution_aware" else ProgrammaticJudge()
    return JudgeCritic(made)
