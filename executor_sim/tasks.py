"""The task family: pick-and-place into the bowl, push onto the mat, stack one cube on another.

Each task instance carries the short prompt (what the Executor is conditioned on), a few
paraphrases, the step-by-step solution a VLM would write for the caption-guided
Demonstrator, a human-readable success criterion and the success predicate itself,
computed from simulator state only.

Locations in the texts are as seen in the scene camera: "left"/"right" of the image and
"front" (near the camera) / "back" (near the arm base).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from executor_sim import scene as sc

if TYPE_CHECKING:
    from executor_sim.env import TabletopEnv

TASK_FAMILIES: tuple[str, ...] = ("pick_place", "push", "stack")

# Compositions (family, cube, target) held out of every training stage (proposal,
# distillation, SFT, RL) and evaluated only in the benchmark's novel-composition split
# (self_distillation.worldtasks). Each cube, family and target still occurs in training
# (a stacked pair's cubes in other pairs), so only the combination is new.
NOVEL_COMPOSITIONS: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("pick_place", "yellow", "bowl"),
        ("push", "green", "mat"),
        ("stack", "blue", "red"),
        ("stack", "green", "yellow"),
    }
)


def is_novel_composition(family: str, obj: str, target: str) -> bool:
    """True for a (family, cube, target) combination held out of training."""
    target = target or {"pick_place": "bowl", "push": "mat"}.get(family, target)
    return (family, obj, target) in NOVEL_COMPOSITIONS


# Tolerances of the success predicates, metres.
RESTING_SPEED_M_S = 0.05
STACK_XY_TOL_M = sc.CUBE_HALF_M
STACK_Z_TOL_M = 0.006


@dataclass(frozen=True)
class SceneInfo:
    """Initial layout of one episode (also written to the dataset metadata)."""

    cubes: tuple[str, ...]  # colours present
    cube_poses: dict[str, tuple[float, float, float, float]]  # colour -> (x, y, z, yaw) m, rad
    bowl_xy: tuple[float, float]
    mat_xy: tuple[float, float]
    camera_pos_m: tuple[float, ...] = sc.CAMERA_POS_M

    def to_json(self) -> dict[str, Any]:
        return {
            "cubes": list(self.cubes),
            "cube_poses": {k: list(v) for k, v in self.cube_poses.items()},
            "bowl_xy": list(self.bowl_xy),
            "mat_xy": list(self.mat_xy),
            "camera_pos_m": list(self.camera_pos_m),
            "colors_rgb": {k: list(sc.PALETTE_RGB[k]) for k in (*self.cubes, "bowl", "mat")},
        }


def describe_location(xy: tuple[float, float] | np.ndarray) -> str:
    """Where ``xy`` appears in the scene camera image, in words."""
    x, y = float(xy[0]), float(xy[1])
    # The camera looks back at the arm: world -y is image left, larger x is nearer.
    side = "left" if y < -0.05 else "right" if y > 0.05 else ""
    depth = "front" if x > 0.24 else "back" if x < 0.18 else ""
    if side and depth:
        return f"at the {depth} {side}"
    if side:
        return f"on the {side}"
    if depth:
        return f"at the {depth}, in the middle"
    return "in the middle"


@dataclass(frozen=True)
class Task:
    """One task instance: texts for the models, and the predicate for the judge."""

    family: str
    obj: str  # the cube to move (a colour)
    target: str  # "bowl", "mat" or another cube colour
    prompt: str
    paraphrases: tuple[str, ...]
    solution: str
    success_criterion: str
    extra: dict = field(default_factory=dict)

    def is_success(self, env: TabletopEnv) -> bool:
        """True when the goal holds in the simulator state and the cube rests untouched."""
        pos = env.object_position(self.obj)
        if env.object_speed_m_s(self.obj) > RESTING_SPEED_M_S or env.touching_gripper(self.obj):
            return False
        if self.family == "pick_place":
            bowl = env.object_position("bowl")
            inside = np.linalg.norm(pos[:2] - bowl[:2]) < sc.BOWL_RADIUS_M - 0.5 * sc.CUBE_HALF_M
            return bool(inside and pos[2] < sc.BOWL_WALL_HEIGHT_M + 0.01)
        if self.family == "push":
            mat = env.object_position("mat")
            on_mat = np.all(np.abs(pos[:2] - mat[:2]) < sc.MAT_HALF_M)
            return bool(on_mat and pos[2] < 1.5 * sc.CUBE_HALF_M)
        if self.family == "stack":
            below = env.object_position(self.target)
            aligned = np.linalg.norm(pos[:2] - below[:2]) < STACK_XY_TOL_M
            on_top = abs(pos[2] - below[2] - 2 * sc.CUBE_HALF_M) < STACK_Z_TOL_M
            base_down = below[2] < 1.5 * sc.CUBE_HALF_M
            return bool(aligned and on_top and base_down)
        raise ValueError(f"unknown task family {self.family!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "task_family": self.family,
            "object": self.obj,
            "target": self.target,
            "prompt": self.prompt,
            "paraphrases": list(self.paraphrases),
            "solution": self.solution,
            "success_criterion": self.success_criterion,
        }


def _pick_place(obj: str, scene: SceneInfo) -> Task:
    where = describe_location(scene.cube_poses[obj][:2])
    bowl_where = describe_location(scene.bowl_xy)
    return Task(
        family="pick_place",
        obj=obj,
        target="bowl",
        prompt=f"put the {obj} cube in the bowl",
        paraphrases=(
            f"place the {obj} cube into the bowl",
            f"pick up the {obj} cube and drop it in the bowl",
            f"move the {obj} block into the magenta bowl",
            f"the {obj} cube goes in the bowl",
        ),
        solution=(
            f"1. The gripper opens and moves above the {obj} cube {where}. "
            f"2. It lowers around the {obj} cube and the jaws close on it. "
            f"3. The arm lifts the {obj} cube off the table. "
            f"4. It carries the cube over the magenta bowl {bowl_where}. "
            f"5. It lowers the cube into the bowl and the jaws open to release it. "
            f"6. The arm rises and stays still; the {obj} cube rests inside the bowl."
        ),
        success_criterion=(
            f"the {obj} cube rests inside the bowl rim, on the bowl floor, not held by the gripper"
        ),
    )


def _push(obj: str, scene: SceneInfo) -> Task:
    where = describe_location(scene.cube_poses[obj][:2])
    mat_where = describe_location(scene.mat_xy)
    return Task(
        family="push",
        obj=obj,
        target="mat",
        prompt=f"push the {obj} cube onto the cyan mat",
        paraphrases=(
            f"slide the {obj} cube onto the mat",
            f"push the {obj} block to the cyan square",
            f"move the {obj} cube onto the mat without lifting it",
            f"shove the {obj} cube onto the cyan target",
        ),
        solution=(
            f"1. The gripper closes and moves behind the {obj} cube {where}, on the side "
            f"away from the cyan mat {mat_where}. "
            f"2. It lowers until the closed jaws are level with the cube. "
            f"3. The gripper moves straight towards the mat, pushing the {obj} cube along the "
            f"table. "
            f"4. It stops when the cube is on the cyan mat. "
            f"5. The arm rises and stays still; the {obj} cube sits on the mat."
        ),
        success_criterion=f"the centre of the {obj} cube is on the cyan mat, cube on the table",
    )


def _stack(obj: str, target: str, scene: SceneInfo) -> Task:
    where = describe_location(scene.cube_poses[obj][:2])
    target_where = describe_location(scene.cube_poses[target][:2])
    return Task(
        family="stack",
        obj=obj,
        target=target,
        prompt=f"stack the {obj} cube on the {target} cube",
        paraphrases=(
            f"put the {obj} cube on top of the {target} cube",
            f"place the {obj} block onto the {target} block",
            f"build a tower with the {obj} cube on the {target} cube",
            f"pick up the {obj} cube and set it on the {target} one",
        ),
        solution=(
            f"1. The gripper opens and moves above the {obj} cube {where}. "
            f"2. It lowers around the {obj} cube and the jaws close on it. "
            f"3. The arm lifts the {obj} cube. "
            f"4. It carries the cube above the {target} cube {target_where}. "
            f"5. It lowers the {obj} cube onto the {target} cube and the jaws open. "
            f"6. The arm rises and stays still; the {obj} cube sits on top of the {target} cube."
        ),
        success_criterion=(
            f"the {obj} cube rests on top of the {target} cube, centred within "
            f"{STACK_XY_TOL_M * 100:.1f} cm, the {target} cube on the table"
        ),
    )


def sample_task(family: str, scene: SceneInfo, rng: np.random.Generator) -> Task:
    """A random instance of ``family`` over the cubes present in ``scene``."""
    if family not in TASK_FAMILIES:
        raise ValueError(f"unknown task family {family!r}; known: {TASK_FAMILIES}")
    order = [str(c) for c in rng.permutation(scene.cubes)]
    if family == "pick_place":
        return _pick_place(order[0], scene)
    if family == "push":
        # The cube nearest the mat: long pushes leave the arm's top-down workspace.
        mat = np.asarray(scene.mat_xy)
        nearest = min(
            order, key=lambda c: np.linalg.norm(np.asarray(scene.cube_poses[c][:2]) - mat)
        )
        return _push(nearest, scene)
    return _stack(order[0], order[1], scene)


def make_task(family: str, obj: str, target: str, scene: SceneInfo) -> Task:
    """A specific task instance (for tests and hand-written episodes)."""
    if obj not in scene.cubes:
        raise ValueError(f"cube {obj!r} is not in the scene {scene.cubes!r}")
    if family == "pick_place":
        return _pick_place(obj, scene)
    if family == "push":
        return _push(obj, scene)
    if family == "stack":
        if target not in scene.cubes or target == obj:
            raise ValueError(f"stack target {target!r} must be another cube in {scene.cubes!r}")
        return _stack(obj, target, scene)
    raise ValueError(f"unknown task family {family!r}; known: {TASK_FAMILIES}")
