"""The benchmark's three held-out splits of simulator task items (seeds >= 1,000,000).

* ``seen``: tasks whose (family, cube, target) and short prompt occur in training, in new
  layouts: the scene's own drawn task, with the held-out compositions skipped.
* ``novel_composition``: a (family, cube, target) of ``executor_sim.NOVEL_COMPOSITIONS``,
  which ``executor-propose`` leaves out of every training stage, in the phrasing of the
  short prompts. Each scene keeps the family the simulator drew for it and takes a held-out
  composition of that family that the scene allows (a push moves the cube nearest the mat,
  as the simulator's own push tasks do); a scene that allows none is skipped.
* ``novel_phrasing``: seen compositions given one of the task's paraphrases
  (``Task.paraphrases``), which no training stage uses (training conditions on the short
  prompt and the Demonstrator on the detailed solution); which one is fixed by the seed.

Each split has its own seed range, so no two splits share a layout. Items are built the
way ``executor-propose`` builds them (``proposal_from_task_dict``), so every stage reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from executor_sim.env import EnvConfig, TabletopEnv, make_env
from executor_sim.tasks import NOVEL_COMPOSITIONS, Task, is_novel_composition, make_task
from self_distillation.task_items import TaskItem
from self_distillation.task_proposal import proposal_from_task_dict

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("seen", "novel_composition", "novel_phrasing")
SPLIT_FIRST_SEEDS: dict[str, int] = {
    "seen": 1_000_000,
    "novel_composition": 1_200_000,
    "novel_phrasing": 1_300_000,
}
_MAX_SEEDS_PER_ITEM = 50  # a split that needs more scenes than this per item is an error


@dataclass(frozen=True)
class SplitSpec:
    name: str
    num_items: int
    first_seed: int

    def __post_init__(self) -> None:
        if self.name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.name!r}")
        if self.num_items <= 0 or self.first_seed < 1_000_000:
            raise ValueError(
                f"split {self.name!r}: need num_items > 0 and first_seed >= 1000000 (training "
                f"uses lower seeds), got {self.num_items!r}, {self.first_seed!r}"
            )


def _novel_task(env: TabletopEnv, rng: np.random.Generator) -> Task | None:
    """A held-out composition of the drawn task's family that this scene allows."""
    drawn = env.task
    assert drawn is not None
    assert env.scene is not None
    options = []
    for family, obj, target in sorted(NOVEL_COMPOSITIONS):
        if family != drawn.family or obj not in env.scene.cubes:
            continue
        if family == "push" and obj != drawn.obj:  # the cube nearest the mat
            continue
        if family == "stack" and target not in env.scene.cubes:
            continue
        options.append(make_task(family, obj, "" if family != "stack" else target, env.scene))
    return options[int(rng.integers(len(options)))] if options else None


def _split_task(split: str, env: TabletopEnv, seed: int) -> tuple[Task, str] | None:
    """(task, prompt given to the model) for this scene, or None to skip it."""
    drawn = env.task
    assert drawn is not None
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    if split == "novel_composition":
        task = _novel_task(env, rng)
        return (task, task.prompt) if task is not None else None
    if is_novel_composition(drawn.family, drawn.obj, drawn.target):
        return None
    if split == "seen":
        return drawn, drawn.prompt
    return drawn, drawn.paraphrases[int(rng.integers(len(drawn.paraphrases)))]


def _scenes(spec: SplitSpec, env: TabletopEnv) -> Iterator[tuple[int, Task, str]]:
    for seed in range(spec.first_seed, spec.first_seed + spec.num_items * _MAX_SEEDS_PER_ITEM):
        env.reset(seed)
        chosen = _split_task(spec.name, env, seed)
        if chosen is not None:
            yield seed, *chosen


def build_split(spec: SplitSpec, image_size_px: int = 64) -> list[TaskItem]:
    """``spec.num_items`` items of the split, deterministic in (name, first_seed)."""
    env = make_env(EnvConfig(image_size_px=image_size_px))
    items: list[TaskItem] = []
    try:
        for seed, task, prompt in _scenes(spec, env):
            record = {**task.to_json(), "prompt": prompt}
            proposal = proposal_from_task_dict(record, source=f"worldtasks_{spec.name}")
            assert env.scene is not None
            items.append(
                TaskItem(
                    item_id=f"{spec.name}-{seed}",
                    scene_id=f"sim{seed:07d}",
                    image_rgb=env.render(),
                    proposal=proposal,
                    scene=env.scene.to_json(),
                    seed=seed,
                )
            )
            if len(items) == spec.num_items:
                break
    finally:
        env.close()
    if len(items) < spec.num_items:
        raise ValueError(
            f"split {spec.name!r}: only {len(items)} of {spec.num_items} items in "
            f"{spec.num_items * _MAX_SEEDS_PER_ITEM} scenes from seed {spec.first_seed}"
        )
    logger.info("split %s: %d items", spec.name, len(items))
    return items


def item_family(item: TaskItem) -> str:
    return str(item.proposal.metadata["task_family"])
