"""The unit every stage of the method works on: one scene image with one proposed task.

Stages hand items to each other as ``items.jsonl`` + one PNG per scene:
``executor-propose`` writes them, demonstration generation, GRPO and evaluation read them.
Simulator scenes also carry the scene record and the seed that reproduces the initial
state, which closed-loop evaluation and the programmatic judge need.

``executor_sim`` (the layer below) is the scene-grounded proposer's source of tasks and
renders the simulator's initial scenes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from executor_core.atomic_io import write_bytes_atomic
from executor_sim.env import EnvConfig, make_env
from executor_sim.tasks import TASK_FAMILIES, SceneInfo, is_novel_composition, make_task
from self_distillation.proposal_schema import TaskProposal
from self_distillation.task_proposal import SceneImage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskItem:
    """One (scene image, proposed task) pair with a stable id."""

    item_id: str  # stable across runs: generation is idempotent per item_id
    scene_id: str
    image_rgb: np.ndarray  # (H, W, 3) uint8, the first frame
    proposal: TaskProposal
    scene: dict[str, Any] = field(default_factory=dict)  # simulator scene record, {} if real
    seed: int | None = None  # simulator seed of the initial state, None if real

    @property
    def prompt(self) -> str:
        return self.proposal.task_prompt


def write_png(path: Path, image_rgb: np.ndarray) -> None:
    """Atomic PNG write (temporary file, then rename), maximally compressed."""
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])  # lossless, smallest
    if not ok:
        raise ValueError(f"could not encode {path} from an image of shape {image_rgb.shape!r}")
    write_bytes_atomic(path, buf.tobytes())


def read_png(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    write_bytes_atomic(path, text.encode())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    records = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON: {exc}") from None
    return records


def save_items(items: Sequence[TaskItem], out_dir: Path) -> Path:
    """``out_dir/items.jsonl`` + ``out_dir/scenes/<scene_id>.png``; returns the jsonl path."""
    out_dir = Path(out_dir)
    for item in items:
        png = out_dir / "scenes" / f"{item.scene_id}.png"
        if not png.is_file():
            write_png(png, item.image_rgb)
    path = out_dir / "items.jsonl"
    write_jsonl_atomic(
        path,
        (
            {
                "item_id": it.item_id,
                "scene_id": it.scene_id,
                "image": f"scenes/{it.scene_id}.png",
                "proposal": it.proposal.to_dict(),
                "scene": it.scene,
                "seed": it.seed,
            }
            for it in items
        ),
    )
    return path


def load_items(path: Path, limit: int | None = None) -> list[TaskItem]:
    """Items written by :func:`save_items` (``path`` is the jsonl or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "items.jsonl"
    records = read_jsonl(path)[:limit]
    ids = [r["item_id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate item_id values")
    return [
        TaskItem(
            item_id=r["item_id"],
            scene_id=r["scene_id"],
            image_rgb=read_png(path.parent / r["image"]),
            proposal=TaskProposal.from_dict(r["proposal"]),
            scene=r.get("scene") or {},
            seed=r.get("seed"),
        )
        for r in records
    ]


def check_task_families(families: Sequence[str]) -> None:
    """A ValueError naming any of ``families`` that is not a task family."""
    unknown = sorted(set(families) - set(TASK_FAMILIES))
    if unknown:
        raise ValueError(f"unknown task families {unknown!r}; known: {TASK_FAMILIES}")


def items_of_families(items: Sequence[TaskItem], families: Sequence[str]) -> list[TaskItem]:
    """The items whose proposal's task family is one of ``families`` (empty: all of them)."""
    check_task_families(families)
    if not families:
        return list(items)
    kept = [it for it in items if it.proposal.metadata.get("task_family") in families]
    if not kept:
        raise ValueError(f"no item of the families {tuple(families)!r} among {len(items)} items")
    return kept


def items_from_batch(
    scenes: Sequence[SceneImage], proposals: Sequence[tuple[str, TaskProposal]]
) -> list[TaskItem]:
    """Pair accepted proposals with their scenes; item ids are ``<scene_id>-<k>``."""
    by_id = {s.scene_id: s for s in scenes}
    counts: dict[str, int] = {}
    items = []
    for scene_id, proposal in proposals:
        k = counts.get(scene_id, 0)
        counts[scene_id] = k + 1
        scene = by_id[scene_id]
        items.append(
            TaskItem(
                item_id=f"{scene_id}-{k}",
                scene_id=scene_id,
                image_rgb=scene.image_rgb,
                proposal=proposal,
                scene=scene.metadata.get("scene", {}),
                seed=scene.metadata.get("seed"),
            )
        )
    return items


def load_scene_dir(scene_dir: Path) -> list[SceneImage]:
    """Unlabeled scene images (``*.png``/``*.jpg``) of a folder; ids are the file stems.

    Metadata comes from ``scenes.jsonl`` when present (the format ``executor-sim-scenes``
    writes: ``seed``, ``file``, ``scene``), else from an optional ``<stem>.json`` sidecar.
    """
    scene_dir = Path(scene_dir)
    index = scene_dir / "scenes.jsonl"
    if index.is_file():
        return [
            SceneImage(
                Path(r["file"]).stem,
                read_png(scene_dir / r["file"]),
                {k: v for k, v in r.items() if k != "file"},
            )
            for r in read_jsonl(index)
        ]
    files = sorted(p for p in scene_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise FileNotFoundError(f"no .png/.jpg scene images in {scene_dir}")
    scenes = []
    for f in files:
        side = f.with_suffix(".json")
        meta = json.loads(side.read_text()) if side.is_file() else {}
        scenes.append(SceneImage(f.stem, read_png(f), meta))
    return scenes


# --------------------------------------------------------------------- the simulator side
def render_sim_scenes(
    seeds: Sequence[int], image_size_px: int, task_families: Sequence[str] | None = None
) -> list[SceneImage]:
    """Initial scene images of the simulator for ``seeds``, with scene record and seed."""
    kwargs: dict[str, Any] = {"image_size_px": image_size_px}
    if task_families:
        kwargs["task_families"] = tuple(task_families)
    env = make_env(EnvConfig(**kwargs))
    try:
        scenes = []
        for seed in seeds:
            env.reset(int(seed))
            scenes.append(
                SceneImage(
                    f"sim{int(seed):06d}",
                    env.render(),
                    {"seed": int(seed), "scene": env.scene.to_json(), "task": env.task.to_json()},
                )
            )
        return scenes
    finally:
        env.close()


class SimSceneTaskSource:
    """The task family's feasible tasks for a recorded scene (scene-grounded proposals).

    The task the simulator drew at reset comes first; the others follow in an order fixed
    by the scene's seed, so proposals are reproducible.
    """

    def __init__(
        self, task_families: Sequence[str] | None = None, hold_out_novel: bool = False
    ) -> None:
        self.task_families = tuple(task_families or TASK_FAMILIES)
        self.hold_out_novel = hold_out_novel  # leave out executor_sim.NOVEL_COMPOSITIONS

    def tasks_for_scene(self, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        info = scene_info_from_json(metadata["scene"])
        tasks = []
        for family in self.task_families:
            for obj in info.cubes:
                targets = [c for c in info.cubes if c != obj] if family == "stack" else [""]
                tasks.extend(
                    make_task(family, obj, t, info).to_json()
                    for t in targets
                    if not (self.hold_out_novel and is_novel_composition(family, obj, t))
                )
        rng = np.random.default_rng(int(metadata.get("seed") or 0))
        tasks = [tasks[i] for i in rng.permutation(len(tasks))]
        drawn = metadata.get("task")
        if drawn is not None:  # stable sort: the drawn task first, the rest keep their order
            tasks.sort(key=lambda t: t["prompt"] != drawn.get("prompt"))
        return tasks


def scene_info_from_json(scene: dict[str, Any]) -> SceneInfo:
    """Rebuild the simulator's ``SceneInfo`` from its ``to_json`` record."""
    try:
        return SceneInfo(
            cubes=tuple(scene["cubes"]),
            cube_poses={k: tuple(v) for k, v in scene["cube_poses"].items()},
            bowl_xy=tuple(scene["bowl_xy"]),
            mat_xy=tuple(scene["mat_xy"]),
            camera_pos_m=tuple(scene["camera_pos_m"]),
        )
    except KeyError as exc:
        raise ValueError(f"scene record lacks {exc}; keys: {sorted(scene)}") from None
