"""The task-proposal schema: what a proposer must return and the rules that reject it.

A proposal is three things: a short task prompt (what the Executor will see), a detailed
step-by-step solution (what the Demonstrator sees) and a description of what success looks
like (what a judge checks). Model outputs are untrusted text, so every proposal goes through
:func:`parse_proposal` and :func:`validate_proposal`; a failure raises
:class:`ProposalRejectedError` with a short machine-readable ``reason`` that callers count.

Safety rules (documented in docs/method.md, kept deliberately small and explicit):

* deny-listed terms (whole words, case-insensitive) in any field: anything that involves
  people or animals, fire/heat, sharp or dangerous objects, liquids near the robot,
  throwing/hitting/breaking, defeating the safety layer, and leaving the table;
* the short prompt is one line of at most ``MAX_TASK_CHARS`` characters and
  ``MAX_TASK_WORDS`` words; the solution is ``MIN_STEPS``..``MAX_STEPS`` consecutively
  numbered steps ("1. ...", "2. ..."), each at most ``MAX_STEP_CHARS`` characters;
* no control characters and no URLs (a proposal never needs them; prompt injection does).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_TASK_CHARS = 80
MAX_TASK_WORDS = 14
MIN_STEPS = 2
MAX_STEPS = 10
MAX_STEP_CHARS = 200
MAX_SUCCESS_CHARS = 300

# Whole-word, case-insensitive. Grouped by why the term is refused.
DENY_TERMS: dict[str, tuple[str, ...]] = {
    "people_or_animals": (
        "person",
        "people",
        "human",
        "humans",
        "child",
        "children",
        "eye",
        "eyes",
        "finger",
        "fingers",
        "operator",
        "someone",
        "animal",
        "pet",
        "cat",
        "dog",
    ),
    "fire_or_heat": ("fire", "flame", "burn", "lighter", "stove", "heat"),
    "dangerous_objects": (
        "knife",
        "knives",
        "blade",
        "scissors",
        "razor",
        "needle",
        "gun",
        "weapon",
        "explosive",
    ),
    "liquids": ("water", "liquid", "pour", "spill", "coffee", "juice", "acid"),
    "violent_motion": (
        "throw",
        "toss",
        "hit",
        "smash",
        "break",
        "crush",
        "punch",
        "slam",
        "stab",
        "attack",
    ),
    "safety_override": (
        "disable",
        "override",
        "bypass",
        "ignore",
        "e-stop",
        "estop",
        "unplug",
        "limits",
    ),
    "out_of_workspace": ("the floor", "fall off", "off the edge", "window", "door"),
}

_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_STEP = re.compile(r"^\s*(\d+)[.)]\s+(\S.*)$")
_INLINE_STEP = re.compile(r"(?<!\S)(\d+)[.)]\s+")
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class ProposalRejectedError(ValueError):
    """A model output that is not a usable proposal; ``reason`` is a short code to count."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class TaskProposal:
    """One validated task for one scene image."""

    task_prompt: str  # short, what the Executor is conditioned on
    solution_steps: tuple[str, ...]  # step texts without their numbers
    success_description: str  # what the final frame shows when the task is done
    source: str = "unknown"  # backend that proposed it
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. task_family, paraphrases

    def __post_init__(self) -> None:
        validate_proposal(self)

    @property
    def solution_text(self) -> str:
        """The detailed solution as numbered lines (the Demonstrator's caption)."""
        return "\n".join(f"{i}. {s}" for i, s in enumerate(self.solution_steps, start=1))

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_prompt": self.task_prompt,
            "solution_steps": list(self.solution_steps),
            "success_description": self.success_description,
            "source": self.source,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskProposal:
        return cls(
            task_prompt=data["task_prompt"],
            solution_steps=tuple(data["solution_steps"]),
            success_description=data["success_description"],
            source=data.get("source", "unknown"),
            metadata=dict(data.get("metadata", {})),
        )


def _check_text(name: str, text: Any, max_chars: int) -> str:
    if not isinstance(text, str):
        raise ProposalRejectedError("wrong_type", f"{name} must be a string, got {text!r}")
    text = text.strip()
    if not text:
        raise ProposalRejectedError("empty_field", f"{name} is empty")
    if len(text) > max_chars:
        raise ProposalRejectedError(
            f"{name}_too_long", f"{name} has {len(text)} chars > {max_chars}: {text[:60]!r}..."
        )
    if _CONTROL.search(text):
        raise ProposalRejectedError(
            "control_chars", f"{name} contains control characters: {text!r}"
        )
    if _URL.search(text):
        raise ProposalRejectedError("url", f"{name} contains a URL: {text!r}")
    return text


def find_unsafe_term(text: str) -> tuple[str, str] | None:
    """(category, term) of the first deny-listed term in ``text``, or None."""
    lowered = text.lower()
    for category, terms in DENY_TERMS.items():
        for term in terms:
            if re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", lowered):
                return category, term
    return None


def validate_proposal(p: TaskProposal) -> None:
    """Raise :class:`ProposalRejectedError` if ``p`` breaks a schema or safety rule."""
    task = _check_text("task_prompt", p.task_prompt, MAX_TASK_CHARS)
    if "\n" in task:
        raise ProposalRejectedError("task_multiline", f"task_prompt must be one line: {task!r}")
    if len(task.split()) > MAX_TASK_WORDS:
        raise ProposalRejectedError(
            "task_prompt_too_long", f"{len(task.split())} words > {MAX_TASK_WORDS}: {task!r}"
        )
    if not MIN_STEPS <= len(p.solution_steps) <= MAX_STEPS:
        raise ProposalRejectedError(
            "step_count",
            f"{len(p.solution_steps)} solution steps, need {MIN_STEPS}..{MAX_STEPS}",
        )
    for i, step in enumerate(p.solution_steps, start=1):
        _check_text(f"step_{i}", step, MAX_STEP_CHARS)
    _check_text("success_description", p.success_description, MAX_SUCCESS_CHARS)
    for text in (task, *p.solution_steps, p.success_description):
        hit = find_unsafe_term(text)
        if hit is not None:
            category, term = hit
            raise ProposalRejectedError(
                f"unsafe_{category}", f"deny-listed term {term!r} in {text!r}"
            )


def _split_numbered(text: str) -> tuple[str, ...]:
    """Step texts of "1. a 2. b" (inline) or "1. a\n2) b" (one per line).

    Only markers whose numbers run 1, 2, 3, ... in order split the text, so a number
    inside a step ("lift it 10 cm. 2. Move ...") does not start a step by accident.
    """
    starts: list[re.Match] = []
    for m in _INLINE_STEP.finditer(text):
        if int(m.group(1)) == len(starts) + 1:
            starts.append(m)
    if not starts or text[: starts[0].start()].strip():
        first = text.strip().splitlines()[0] if text.strip() else text
        raise ProposalRejectedError("unnumbered_step", f"solution must start with '1. ': {first!r}")
    ends = [m.start() for m in starts[1:]] + [len(text)]
    steps = tuple(text[m.end() : end].strip() for m, end in zip(starts, ends, strict=True))
    # A line that is not part of any numbered step is a malformed list, not prose to keep.
    for step in steps:
        for line in step.splitlines()[1:]:
            if line.strip():
                reason = "step_numbering" if _STEP.match(line) else "unnumbered_step"
                raise ProposalRejectedError(
                    reason, f"line {line.strip()!r} belongs to no numbered step"
                )
    return steps


def parse_steps(solution: Any) -> tuple[str, ...]:
    """Numbered steps ("1. a\n2. b", "1. a 2. b") or a JSON list -> step texts.

    Numbers must start at 1 and run consecutively; a list of un-numbered strings is taken
    in order (JSON arrays are already ordered).
    """
    if isinstance(solution, list):
        if not all(isinstance(s, str) for s in solution):
            raise ProposalRejectedError(
                "wrong_type", f"solution items must be strings: {solution!r}"
            )
        lines = [s.strip() for s in solution if s.strip()]
        if not any(_STEP.match(s) for s in lines):
            return tuple(lines)
        for expected, line in enumerate(lines, start=1):
            m = _STEP.match(line)
            if m is None:
                raise ProposalRejectedError(
                    "unnumbered_step", f"step {expected} is not numbered: {line!r}"
                )
            if int(m.group(1)) != expected:
                raise ProposalRejectedError(
                    "step_numbering", f"expected step {expected}, got {m.group(1)!r} in {line!r}"
                )
        return tuple(_STEP.match(line).group(2).strip() for line in lines)
    if isinstance(solution, str):
        return _split_numbered(solution)
    raise ProposalRejectedError("wrong_type", f"solution must be text or a list: {solution!r}")


def parse_proposal(raw_text: str, source: str = "unknown") -> TaskProposal:
    """Model output text (a JSON object, possibly inside prose or a code fence) -> proposal.

    Expected keys: ``task`` (short prompt), ``solution`` (numbered steps, text or list),
    ``success`` (what success looks like).
    """
    if not isinstance(raw_text, str) or not raw_text.strip():
        raise ProposalRejectedError("empty_output", f"model returned {raw_text!r}")
    match = _JSON_OBJECT.search(raw_text)
    if match is None:
        raise ProposalRejectedError("not_json", f"no JSON object in {raw_text[:120]!r}")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise ProposalRejectedError("not_json", f"{exc} in {match.group(0)[:120]!r}") from None
    if not isinstance(data, dict):
        raise ProposalRejectedError("not_json", f"expected an object, got {data!r}")
    missing = [k for k in ("task", "solution", "success") if k not in data]
    if missing:
        raise ProposalRejectedError("missing_field", f"missing {missing} in {sorted(data)}")
    return TaskProposal(
        task_prompt=data["task"] if not isinstance(data["task"], str) else data["task"].strip(),
        solution_steps=parse_steps(data["solution"]),
        success_description=(
            data["success"].strip() if isinstance(data["success"], str) else data["success"]
        ),
        source=source,
    )
