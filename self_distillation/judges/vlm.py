"""A VLM judge that asks the execution-aware judge's three questions, plus DreamGen-Bench's two.

``num_frames`` frames are sampled evenly over the whole video (first and last always
included) and sent, in time order, as the images of one request to a VLM backend
(``self_distillation.vlm_backends``: a local transformers model or an OpenAI-compatible
server such as vLLM or llama.cpp serving Qwen2.5-VL). The prompt (:data:`JUDGE_PROMPT`,
documented word for word in docs/vlm_judge.md) asks five questions, each answered with a
score in [0, 1] and a short reason, as one strict JSON object (:data:`REPLY_SCHEMA`):

* **task**: the success predicate holds on the final state and the object rests in or on
  the goal, released (a cube carried over the goal and not let go does not count);
* **agent**: the object moves only while the gripper is at it, and the arm visibly does it;
* **consistency**: objects keep identity, count, size and colour; nothing appears,
  vanishes, duplicates or teleports; objects that should stay still stay still;
* **instruction_following** (DreamGen-Bench): the video does what the instruction says;
* **physics** (DreamGen-Bench physics alignment): the motion is physically plausible.

The verdict is an :class:`ExecutionAwareVerdict`, the execution-aware judge's type, so
either judge plugs into judging, distillation selection and the GRPO reward: success = task,
agent and consistency each at least its threshold (``task_pass``, ...); score = their mean.
The DreamGen scores are reported, not part of success: ``details["scores"]`` holds all
five in [0, 1]; ``details["instruction_following"]`` and ``details["physics"]`` repeat the
two on the 0-10 scale ``evaluate.score_video`` reads.

A reply that is not that JSON object is malformed: :func:`parse_judge_reply` raises
:class:`MalformedReplyError` naming the bad field, and the judge asks again (up to
``max_attempts`` in all), telling the model what was wrong. A reply still malformed then is,
with ``on_malformed="fail"``, a failed verdict with all scores 0 and ``details["error"]``
(counted in ``malformed_count``), or with ``on_malformed="raise"`` the error itself. Nothing
malformed ever counts as a pass. Backend errors (server down, timeouts) propagate.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from self_distillation.judges.execution_aware import SCORE_NAMES, ExecutionAwareVerdict

logger = logging.getLogger(__name__)

DREAMGEN_NAMES: tuple[str, ...] = ("instruction_following", "physics")
QUESTION_NAMES: tuple[str, ...] = (*SCORE_NAMES, *DREAMGEN_NAMES)
MAX_REASON_CHARS = 300

JUDGE_PROMPT = """You are a strict judge of robot videos. The {n} images are frames of one \
video of a robot arm at a table, in time order (frames {frame_list} of {total}). The first \
image is the real start of the video; the last image is its final state.

Instruction given to the robot: "{prompt}"
Success condition: {success}

Answer five questions. Give each a score from 0.0 (clearly no) to 1.0 (clearly yes) and a \
one-sentence reason.
1. task: In the final state, does the success condition hold, with the object resting in or \
on the goal and released by the gripper? An object still held by the gripper, or carried \
over the goal but not put down, does not count.
2. agent: Does every object move only while the gripper is at it, and does the arm visibly \
perform the motion? An object that moves with the gripper away from it, or an arm that \
never reaches the object, scores 0.
3. consistency: Do all objects keep their identity, count, size and colour in every frame? \
Nothing may appear, vanish, duplicate or jump to a new place between frames, and objects \
the task does not move must stay where they are.
4. instruction_following: Does the video do what the instruction says (the right object, \
the right goal, the right action)?
5. physics: Is the motion physically plausible (no passing through objects, floating, \
melting or sudden jumps)?

Reply with one JSON object and nothing else, with exactly these five keys, each an object \
with exactly the keys "score" (a number from 0 to 1) and "reason" (a string):
{{"task": {{"score": 0.0, "reason": "..."}}, "agent": {{"score": 0.0, "reason": "..."}}, \
"consistency": {{"score": 0.0, "reason": "..."}}, \
"instruction_following": {{"score": 0.0, "reason": "..."}}, \
"physics": {{"score": 0.0, "reason": "..."}}}}"""

RETRY_SUFFIX = """

Your previous reply was rejected: {error}
Reply again with the JSON object only, exactly as specified."""

_ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string", "minLength": 1},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}
REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: {"$ref": "#/$defs/answer"} for name in QUESTION_NAMES},
    "required": list(QUESTION_NAMES),
    "additionalProperties": False,
    "$defs": {"answer": _ANSWER_SCHEMA},
}
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)


class MalformedReplyError(ValueError):
    """A judge reply that is not the JSON object of :data:`REPLY_SCHEMA`; ``field`` names
    the offending key (``"<reply>"`` when the reply is not a JSON object at all)."""

    def __init__(self, field: str, problem: str, reply: str) -> None:
        self.field = field
        self.problem = problem
        self.reply = reply
        super().__init__(f"field {field!r}: {problem} (reply {reply[:160]!r})")


@dataclass(frozen=True)
class Answer:
    score: float  # in [0, 1]
    reason: str


@dataclass(frozen=True)
class VLMJudgeConfig:
    num_frames: int = 8  # sampled evenly over the video, first and last included
    task_pass: float = 0.7
    agent_pass: float = 0.7
    consistency_pass: float = 0.7
    max_attempts: int = 3  # asks per video while the reply is malformed
    on_malformed: Literal["fail", "raise"] = "fail"

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames!r}")
        for name in ("task_pass", "agent_pass", "consistency_pass"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        if self.on_malformed not in ("fail", "raise"):
            raise ValueError(f"on_malformed must be fail/raise, got {self.on_malformed!r}")

    @property
    def thresholds(self) -> dict[str, float]:
        return {name: getattr(self, f"{name}_pass") for name in SCORE_NAMES}


def sample_frame_indices(num_video_frames: int, num_frames: int) -> np.ndarray:
    """``num_frames`` strictly increasing indices spread evenly over ``[0, T - 1]``, first
    and last included (all T when the video is shorter)."""
    if num_video_frames < 2:
        raise ValueError(f"a video needs >= 2 frames to judge, got {num_video_frames!r}")
    n = min(num_frames, num_video_frames)
    # step >= 1, so rounding half up keeps the indices distinct
    return np.floor(np.linspace(0, num_video_frames - 1, n) + 0.5).astype(int)


def parse_judge_reply(text: str) -> dict[str, Answer]:
    """The judge's reply -> {question: Answer} for the five questions; raises
    :class:`MalformedReplyError` naming the bad field. Tolerated: surrounding whitespace and
    one markdown code fence; nothing else (no prose, no missing or extra keys, no strings
    for numbers, no scores outside [0, 1])."""
    text = str(text or "")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        problem = f"not JSON ({exc.msg} at char {exc.pos})"
        raise MalformedReplyError("<reply>", problem, text) from None
    if not isinstance(data, dict):
        raise MalformedReplyError("<reply>", f"not a JSON object but {type(data).__name__}", text)
    for name in QUESTION_NAMES:
        if name not in data:
            raise MalformedReplyError(name, "missing", text)
    extra = sorted(set(data) - set(QUESTION_NAMES))
    if extra:
        raise MalformedReplyError(extra[0], f"unexpected key (keys must be {QUESTION_NAMES})", text)
    return {name: _answer(name, data[name], text) for name in QUESTION_NAMES}


def _answer(name: str, value: Any, text: str) -> Answer:
    if not isinstance(value, dict):
        raise MalformedReplyError(name, f'must be {{"score", "reason"}}, got {value!r}', text)
    extra = sorted(set(value) - {"score", "reason"})
    if extra:
        raise MalformedReplyError(f"{name}.{extra[0]}", "unexpected key", text)
    score = value.get("score")
    number = isinstance(score, int | float) and not isinstance(score, bool)
    if not (number and math.isfinite(score) and 0.0 <= score <= 1.0):
        raise MalformedReplyError(
            f"{name}.score", f"must be a number in [0, 1], got {score!r}", text
        )
    reason = value.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise MalformedReplyError(
            f"{name}.reason", f"must be a non-empty string, got {reason!r}", text
        )
    return Answer(float(score), reason.strip()[:MAX_REASON_CHARS])


def _retry_suffix(error: MalformedReplyError) -> str:
    return RETRY_SUFFIX.format(error=f"field {error.field!r}: {error.problem}")


def check_video(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {getattr(frames, 'shape', None)!r}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype!r}")


class VLMJudge:
    """Judges videos with a VLM backend (``generate(images, prompts) -> texts``, one
    sequence of frames per request); module docstring."""

    def __init__(self, backend: Any, config: VLMJudgeConfig | None = None) -> None:
        self.backend = backend
        self.config = config or VLMJudgeConfig()
        self.malformed_count = 0  # videos whose every attempt was malformed

    def request(
        self, frames: np.ndarray, episode: dict[str, Any]
    ) -> tuple[list[int], list[np.ndarray], str]:
        """The sampled frame indices, those frames and the prompt for one video."""
        check_video(frames)
        prompt = str(episode.get("prompt", "")).strip()
        if not prompt:
            raise ValueError(f"episode {episode.get('episode_index')!r} has no prompt")
        success = str(episode.get("success_criterion") or "the instruction is done").strip()
        idx = sample_frame_indices(frames.shape[0], self.config.num_frames)
        text = JUDGE_PROMPT.format(
            n=len(idx),
            frame_list=", ".join(str(i) for i in idx),
            total=frames.shape[0],
            prompt=prompt,
            success=success,
        )
        return idx.tolist(), [frames[i] for i in idx], text

    def judge(self, frames: np.ndarray, episode: dict[str, Any]) -> ExecutionAwareVerdict:
        return self.judge_many([frames], [episode])[0]

    def judge_many(
        self, videos: Sequence[np.ndarray], episodes: Sequence[dict[str, Any]]
    ) -> list[ExecutionAwareVerdict]:
        """Batched: one backend call for all videos, then one per retry round for the
        videos whose reply was malformed."""
        if len(videos) != len(episodes):
            raise ValueError(f"{len(videos)} videos for {len(episodes)} episodes")
        requests = [self.request(f, e) for f, e in zip(videos, episodes, strict=True)]
        answers: dict[int, tuple[dict[str, Answer], str, int]] = {}
        errors: dict[int, tuple[MalformedReplyError, str]] = {}
        pending = list(range(len(requests)))
        for attempt in range(1, self.config.max_attempts + 1):
            prompts = [
                requests[i][2] + (_retry_suffix(errors[i][0]) if i in errors else "")
                for i in pending
            ]
            texts = self.backend.generate([requests[i][1] for i in pending], prompts)
            if len(texts) != len(pending):
                raise RuntimeError(f"backend answered {len(texts)} replies to {len(pending)}")
            for i, text in zip(pending, texts, strict=True):
                try:
                    answers[i] = (parse_judge_reply(text), text, attempt)
                    errors.pop(i, None)
                except MalformedReplyError as exc:
                    logger.info("malformed judge reply (attempt %d): %s", attempt, exc)
                    errors[i] = (exc, text)
            pending = sorted(errors)
            if not pending:
                break
        if errors and self.config.on_malformed == "raise":
            raise errors[min(errors)][0]
        self.malformed_count += len(errors)
        return [
            self._malformed_verdict(*errors[i], requests[i][0])
            if i in errors
            else self.verdict(*answers[i], requests[i][0], episode)
            for i, episode in enumerate(episodes)
        ]

    def verdict(
        self,
        answers: dict[str, Answer],
        text: str,
        attempts: int,
        frame_indices: list[int],
        episode: dict[str, Any],
    ) -> ExecutionAwareVerdict:
        """Success: task, agent and consistency each at least its threshold; score: their
        mean (as the execution-aware judge)."""
        thresholds = self.config.thresholds
        passed = {name: answers[name].score >= thresholds[name] for name in SCORE_NAMES}
        failed = [name for name in SCORE_NAMES if not passed[name]]
        reason = "; ".join(f"{n}: {answers[n].reason}" for n in failed) or "all three pass"
        scores = {name: a.score for name, a in answers.items()}
        return ExecutionAwareVerdict(
            success=not failed,
            score=sum(scores[n] for n in SCORE_NAMES) / len(SCORE_NAMES),
            reason=reason,
            details={
                **{k: episode[k] for k in ("task_family", "object", "target") if k in episode},
                "passed": passed,
                "why": {name: a.reason for name, a in answers.items()},
                "scores": scores,
                # evaluate.score_video reads these two on a 0-10 scale
                **{name: 10.0 * scores[name] for name in DREAMGEN_NAMES},
                "frames": frame_indices,
                "attempts": attempts,
                "raw": text[:500],
            },
            **{name: scores[name] for name in SCORE_NAMES},
        )

    def _malformed_verdict(
        self, error: MalformedReplyError, text: str, frame_indices: list[int]
    ) -> ExecutionAwareVerdict:
        attempts = self.config.max_attempts
        return ExecutionAwareVerdict(
            success=False,
            score=0.0,
            reason=f"malformed judge reply after {attempts} attempts: {error}",
            details={
                "error": str(error),
                "field": error.field,
                "frames": frame_indices,
                "attempts": attempts,
                "raw": str(text)[:500],
            },
        )
