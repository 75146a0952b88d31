"""Task proposal: scene images -> validated :class:`TaskProposal` s, rejections counted.

Backends behind one :class:`TaskProposer` protocol:

* :class:`VLMTaskProposer` over a :class:`~self_distillation.vlm_backends.VLMBackend`
  (a local transformers VLM or an OpenAI-compatible HTTP endpoint);
* :class:`SimTaskFamilyProposer`, the simulator's scene-grounded proposer (the embedded
  default: tasks come from the task family, grounded in the scene's objects).

A proposer never returns an unvalidated proposal: malformed or unsafe outputs become
:class:`Rejection` records with a reason, and :class:`ProposalStats` counts them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from self_distillation.proposal_schema import (
    MAX_STEPS,
    MAX_TASK_WORDS,
    ProposalRejectedError,
    TaskProposal,
    parse_proposal,
    parse_steps,
)
from self_distillation.vlm_backends import VLMBackend

logger = logging.getLogger(__name__)

PROPOSAL_INSTRUCTION = f"""You see a tabletop with a small robot arm (one gripper).
Propose ONE manipulation task the arm can do with the objects you see.
Answer with a JSON object only, with these keys:
  "task": a short imperative instruction, at most {MAX_TASK_WORDS} words,
  "solution": the detailed step-by-step solution as a list of at most {MAX_STEPS} strings
              "1. ...", "2. ...", describing how the arm and the objects move,
  "success": one sentence describing what the scene looks like when the task is done.
Only use the objects on the table; nothing involving people, liquids, fire or sharp objects.
"""


@dataclass(frozen=True)
class SceneImage:
    """An unlabeled scene: an image and whatever is known about it (sim scenes: objects)."""

    scene_id: str
    image_rgb: np.ndarray  # (H, W, 3) uint8
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. {"seed": 3, "scene": {...}}

    def __post_init__(self) -> None:
        img = self.image_rgb
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f"scene {self.scene_id!r}: image must be (H, W, 3), "
                f"got {getattr(img, 'shape', None)!r}"
            )
        if img.dtype != np.uint8:
            raise ValueError(f"scene {self.scene_id!r}: image must be uint8, got {img.dtype!r}")
        if not self.scene_id:
            raise ValueError("scene_id must be non-empty")


@dataclass(frozen=True)
class Rejection:
    scene_id: str
    reason: str  # short code from ProposalRejectedError.reason
    detail: str
    raw_output: str


@dataclass
class ProposalStats:
    """How many outputs became proposals and why the others did not."""

    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count

    @property
    def total(self) -> int:
        return self.accepted + sum(self.rejected.values())

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": dict(sorted(self.rejected.items())),
            "total": self.total,
            "acceptance_rate": self.acceptance_rate,
        }


@dataclass
class ProposalBatch:
    proposals: list[tuple[str, TaskProposal]]  # (scene_id, proposal)
    rejections: list[Rejection]
    stats: ProposalStats


class TaskProposer(Protocol):
    """Proposes up to ``num_per_scene`` tasks for each scene."""

    name: str

    def propose(self, scenes: Sequence[SceneImage], num_per_scene: int = 1) -> ProposalBatch: ...


def collect_outputs(
    scene_ids: Sequence[str], raw_outputs: Sequence[str], source: str
) -> ProposalBatch:
    """Parse and validate raw model outputs; duplicates of a scene's task are rejected too."""
    stats = ProposalStats()
    proposals: list[tuple[str, TaskProposal]] = []
    rejections: list[Rejection] = []
    seen: set[tuple[str, str]] = set()
    for scene_id, raw in zip(scene_ids, raw_outputs, strict=True):
        try:
            proposal = parse_proposal(raw, source=source)
            key = (scene_id, proposal.task_prompt.lower())
            if key in seen:
                raise ProposalRejectedError(
                    "duplicate", f"task {proposal.task_prompt!r} already kept"
                )
            seen.add(key)
        except ProposalRejectedError as exc:
            stats.rejected[exc.reason] += 1
            rejections.append(Rejection(scene_id, exc.reason, exc.detail, raw))
            logger.info("rejected proposal for %s: %s", scene_id, exc)
            continue
        stats.accepted += 1
        proposals.append((scene_id, proposal))
    return ProposalBatch(proposals, rejections, stats)


class VLMTaskProposer:
    """Asks a VLM for a JSON proposal per (scene, sample); validates every answer."""

    def __init__(self, backend: VLMBackend, instruction: str = PROPOSAL_INSTRUCTION) -> None:
        self.backend = backend
        self.instruction = instruction
        self.name = f"vlm[{backend.name}]"

    def propose(self, scenes: Sequence[SceneImage], num_per_scene: int = 1) -> ProposalBatch:
        if num_per_scene <= 0:
            raise ValueError(f"num_per_scene must be > 0, got {num_per_scene!r}")
        requests = [s for s in scenes for _ in range(num_per_scene)]
        raw = self.backend.generate(
            [s.image_rgb for s in requests], [self.instruction] * len(requests)
        )
        return collect_outputs([s.scene_id for s in requests], raw, source=self.name)


class SceneTaskSource(Protocol):
    """What the simulator's task family offers for scene-grounded proposals: given a scene's
    metadata (``scene`` record, ``seed``, the ``task`` drawn at reset), the feasible tasks,
    each a dict with at least ``prompt`` (short), ``solution`` (numbered steps, text or list)
    and ``success_criterion``; optionally ``paraphrases``, ``task_family``, ``object``,
    ``target``. Implemented by ``task_items.SimSceneTaskSource``."""

    def tasks_for_scene(self, metadata: dict[str, Any]) -> list[dict[str, Any]]: ...


class SimTaskFamilyProposer:
    """The embedded default: tasks come from the simulator's task family for the scene's
    objects, so they are always feasible; they still pass the same schema checks."""

    name = "sim_task_family"

    def __init__(self, source: SceneTaskSource | Callable[[dict[str, Any]], list[dict]]) -> None:
        self._tasks_for_scene = (
            source.tasks_for_scene if hasattr(source, "tasks_for_scene") else source
        )

    def propose(self, scenes: Sequence[SceneImage], num_per_scene: int = 1) -> ProposalBatch:
        if num_per_scene <= 0:
            raise ValueError(f"num_per_scene must be > 0, got {num_per_scene!r}")
        stats = ProposalStats()
        proposals: list[tuple[str, TaskProposal]] = []
        rejections: list[Rejection] = []
        for scene in scenes:
            if "scene" not in scene.metadata:
                raise ValueError(
                    f"scene {scene.scene_id!r} has no 'scene' metadata; the sim proposer needs "
                    "the object list the simulator recorded"
                )
            for task in self._tasks_for_scene(scene.metadata)[:num_per_scene]:
                try:
                    proposal = proposal_from_task_dict(task, source=self.name)
                except ProposalRejectedError as exc:
                    stats.rejected[exc.reason] += 1
                    rejections.append(Rejection(scene.scene_id, exc.reason, exc.detail, str(task)))
                    continue
                except KeyError as exc:
                    stats.rejected["missing_field"] += 1
                    rejections.append(
                        Rejection(scene.scene_id, "missing_field", str(exc), str(task))
                    )
                    continue
                stats.accepted += 1
                proposals.append((scene.scene_id, proposal))
        return ProposalBatch(proposals, rejections, stats)


def proposal_from_task_dict(task: dict[str, Any], source: str) -> TaskProposal:
    """A task-family record (``prompt``, ``solution``, ``success_criterion``) -> proposal."""

    meta = {k: task[k] for k in ("task_family", "object", "target", "paraphrases") if k in task}
    return TaskProposal(
        task_prompt=str(task["prompt"]).strip(),
        solution_steps=parse_steps(task["solution"]),
        success_description=str(task["success_criterion"]).strip(),
        source=source,
        metadata=meta,
    )
