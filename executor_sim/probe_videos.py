"""Probe videos for video judges: what the simulator shows when a task is done, and six
ways a video can look done without the arm doing it.

Every probe is a clip in the video models' format (``num_frames`` frames, one every
``frame_stride`` control steps, square ``image_size_px`` frames; docs/ARCHITECTURE.md),
starting from ``env.reset(seed, family)``, and carries the episode record a judge reads (the
task of the reset, the scene, the seed). The kinds:

* ``expert``: the scripted expert's episode (a positive when its predicate holds at the end);
* ``frozen``: the first frame repeated;
* ``teleport``: the arm stays at home; from one frame on the task cube rests at the goal;
* ``copy_at_goal``: the arm stays at home, the task cube stays where it is, and from one
  frame on a second cube of its colour rests at the goal (the copy is composited: the
  simulator has one cube per colour);
* ``wrong_cube``: the expert does the same task family with another cube of the scene;
* ``hold``: the expert's episode cut before the release and held: the cube is carried over
  the goal (``over``) or lowered onto it (``lowered``) and never let go; for a push the
  pusher stays against the cube once the cube is on the mat;
* ``slide``: the arm stays at home and the task cube slides, a couple of centimetres per
  frame, from its start to the goal.

Kinematic probes (frozen, teleport, copy, slide) set object poses and render, without
stepping the physics; the expert-based ones step the world like ``executor_sim.rollout``.
Where a frame index is drawn (when the cube jumps, starts sliding, which hold variant), it
comes from ``np.random.default_rng([seed, kind index])``: a probe is a function of
(kind, seed, family, config).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from executor_sim import scene as sc
from executor_sim.env import TabletopEnv
from executor_sim.expert import GRIPPER_CLOSED_RAD, expert_policy
from executor_sim.tasks import Task, make_task

logger = logging.getLogger(__name__)

PROBE_KINDS: tuple[str, ...] = (
    "expert",
    "frozen",
    "teleport",
    "copy_at_goal",
    "wrong_cube",
    "hold",
    "slide",
)
ADVERSARIAL_KINDS: tuple[str, ...] = PROBE_KINDS[1:]
SLIDE_STEP_M = 0.02  # how far a sliding cube moves between two frames
_OUT_OF_SIGHT_M = np.array([1.5, 1.5, -0.5])  # under the table, where unused cubes wait
_LIFTED_M = sc.CUBE_HALF_M + 0.02  # a cube centre this high is off the table


@dataclass(frozen=True)
class ProbeConfig:
    image_size_px: int = 64
    num_frames: int = 16  # first frame + 15 future frames, as the video models imagine
    frame_stride: int = 4  # control steps between two frames

    def __post_init__(self) -> None:
        if not 16 <= self.image_size_px <= sc.MAX_RENDER_PX:
            raise ValueError(
                f"image_size_px must be in [16, {sc.MAX_RENDER_PX}], got {self.image_size_px!r}"
            )
        if self.num_frames < 6:
            raise ValueError(f"num_frames must be >= 6, got {self.num_frames!r}")
        if self.frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {self.frame_stride!r}")

    @property
    def num_steps(self) -> int:
        """Control steps the clip covers (its last frame is taken after them)."""
        return (self.num_frames - 1) * self.frame_stride


@dataclass
class ProbeVideo:
    kind: str
    seed: int
    frames: np.ndarray  # (T, S, S, 3) uint8, frame 0 = the scene after reset
    record: dict[str, Any]  # the episode record a judge reads (the reset's task)
    predicate: bool  # the simulator's task predicate in the state the last frame shows
    valid: bool = True  # False: the probe could not be made as described (see note)
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def probe_record(env: TabletopEnv, seed: int, family: str | None) -> dict[str, Any]:
    """The ``meta/executor_episodes.jsonl``-style record of the env's current episode, made
    by ``env.reset(seed, family)`` (``reset_family``: a push layout is drawn differently)."""
    if env.task is None or env.scene is None:
        raise ValueError("the env has no episode: call env.reset(seed) first")
    return {
        "episode_index": int(seed),
        **env.task.to_json(),
        "seed": int(seed),
        "reset_family": family,
        "scene": env.scene.to_json(),
    }


def goal_pose(env: TabletopEnv, task: Task) -> tuple[np.ndarray, float]:
    """Where the task cube rests once the task is done: (position (3,) m, yaw rad)."""
    if task.family == "pick_place":
        bowl = env.object_position("bowl")
        return np.array([bowl[0], bowl[1], 0.004 + sc.CUBE_HALF_M + 0.001]), 0.0
    if task.family == "push":
        mat = env.object_position("mat")
        return np.array([mat[0], mat[1], sc.CUBE_HALF_M]), 0.0
    below = env.object_position(task.target)
    on_top = np.array([below[0], below[1], below[2] + 2 * sc.CUBE_HALF_M + 0.001])
    return on_top, _yaw(env, task.target)


def render_probe(
    env: TabletopEnv,
    kind: str,
    seed: int,
    family: str | None = None,
    cfg: ProbeConfig | None = None,
) -> ProbeVideo:
    """One probe video of ``kind`` for ``env.reset(seed, family)`` (see the module doc)."""
    if kind not in PROBE_KINDS:
        raise ValueError(f"unknown probe kind {kind!r}; known: {PROBE_KINDS}")
    cfg = cfg or ProbeConfig()
    if env.cfg.image_size_px != cfg.image_size_px:
        raise ValueError(
            f"the env renders {env.cfg.image_size_px} px, the probe wants {cfg.image_size_px} px"
        )
    env.reset(seed, task_family=family)
    record = probe_record(env, seed, family)
    rng = np.random.default_rng([int(seed), PROBE_KINDS.index(kind)])
    return _MAKERS[kind](env, record, cfg, rng)


# ------------------------------------------------------------------ expert-based probes
def _roll(
    env: TabletopEnv, cfg: ProbeConfig, policy: Any, stop: Any = None
) -> tuple[np.ndarray, int | None]:
    """Step ``policy`` for the clip's steps, a frame every ``frame_stride`` steps. Once
    ``stop(env, action)`` says so, the arm holds the target it had before that step.
    Returns the frames and the step the hold began (None: it never did)."""
    frames = [env.observation()["image"]]
    held: np.ndarray | None = None
    cut: int | None = None
    last = env.target_rad.copy()
    for step in range(1, cfg.num_steps + 1):
        action = policy(env) if held is None else held
        if held is None and stop is not None and stop(env, action):
            held, cut, action = last, step - 1, last
        last = np.asarray(action, float).copy()
        obs = env.step(action)
        if step % cfg.frame_stride == 0:
            frames.append(obs["image"])
    return np.stack(frames), cut


def _expert(
    env: TabletopEnv, record: dict[str, Any], cfg: ProbeConfig, rng: np.random.Generator
) -> ProbeVideo:
    frames, _ = _roll(env, cfg, expert_policy(env))
    ok = bool(env.task.is_success(env))
    note = "" if ok else "the expert did not finish the task within the clip"
    return ProbeVideo("expert", record["seed"], frames, record, ok, ok, note)


def _wrong_cube(
    env: TabletopEnv, record: dict[str, Any], cfg: ProbeConfig, rng: np.random.Generator
) -> ProbeVideo:
    task, scene = env.task, env.scene
    other = str(rng.choice([c for c in scene.cubes if c != task.obj]))
    target = task.target
    if task.family == "stack" and other == task.target:
        target = task.obj  # the two cubes swap roles
    wrong = make_task(task.family, other, target, scene)
    start = env.object_position(other)
    frames, _ = _roll(env, cfg, expert_policy(env, wrong))
    moved = float(np.linalg.norm(env.object_position(other) - start))
    valid = moved > sc.CUBE_HALF_M
    note = "" if valid else f"the wrong cube moved only {moved * 100:.1f} cm"
    details = {"moved_cube": other, "moved_m": moved, "wrong_task": wrong.prompt}
    return ProbeVideo(
        "wrong_cube",
        record["seed"],
        frames,
        record,
        bool(task.is_success(env)),
        valid,
        note,
        details,
    )


def _hold(
    env: TabletopEnv, record: dict[str, Any], cfg: ProbeConfig, rng: np.random.Generator
) -> ProbeVideo:
    task = env.task
    variant = "pushed" if task.family == "push" else str(rng.choice(["over", "lowered"]))
    stop = _HOLD_RULES[variant](env, task)
    frames, cut = _roll(env, cfg, expert_policy(env), stop)
    valid = cut is not None
    note = "" if valid else f"the expert never reached the {variant!r} state to hold"
    details = {"variant": variant, "hold_from_step": cut}
    return ProbeVideo(
        "hold", record["seed"], frames, record, bool(task.is_success(env)), valid, note, details
    )


def _over_goal_xy(env: TabletopEnv, task: Task) -> bool:
    goal, _ = goal_pose(env, task)
    d = float(np.linalg.norm(env.object_position(task.obj)[:2] - goal[:2]))
    tol = sc.BOWL_RADIUS_M - sc.CUBE_HALF_M if task.family == "pick_place" else sc.CUBE_HALF_M
    return d < tol


def _stop_over(env: TabletopEnv, task: Task) -> Any:
    """Hold once the carried cube is over the goal (still at carrying height)."""

    def stop(env: TabletopEnv, action: np.ndarray) -> bool:
        lifted = env.object_position(task.obj)[2] > _LIFTED_M
        return bool(lifted and env.touching_gripper(task.obj) and _over_goal_xy(env, task))

    return stop


def _stop_lowered(env: TabletopEnv, task: Task) -> Any:
    """Hold the step before the jaws first open after they closed on the cube."""
    state = {"closed": False, "last": env.target_rad[5]}

    def stop(env: TabletopEnv, action: np.ndarray) -> bool:
        gripper = float(action[5])
        opening = state["closed"] and gripper > state["last"] + 1e-6
        state["closed"] |= gripper <= GRIPPER_CLOSED_RAD + 1e-6
        state["last"] = gripper
        return bool(opening)

    return stop


def _stop_pushed(env: TabletopEnv, task: Task) -> Any:
    """Hold once the pushed cube's centre is on the mat and the pusher touches it."""

    def stop(env: TabletopEnv, action: np.ndarray) -> bool:
        mat = env.object_position("mat")
        on_mat = np.all(np.abs(env.object_position(task.obj)[:2] - mat[:2]) < sc.MAT_HALF_M)
        return bool(on_mat and env.touching_gripper(task.obj))

    return stop


_HOLD_RULES = {"over": _stop_over, "lowered": _stop_lowered, "pushed": _stop_pushed}


# -------------------------------------------------------------------- kinematic probes
def _frozen(
    env: TabletopEnv, record: dict[str, Any], cfg: ProbeConfig, rng: np.random.Generator
) -> ProbeVideo:
    first = env.render()
    frames = np.stack([first] * cfg.num_frames)
    return ProbeVideo("frozen", record["seed"], frames, record, bool(env.task.is_success(env)))


def _event_frame(cfg: ProbeConfig, rng: np.random.Generator) -> int:
    """A frame index for a sudden event, leaving at least two frames before and after."""
    return int(rng.integers(2, cfg.num_frames - 2))


def _teleport(
    env: TabletopEnv, record: dict[str, Any], cfg: ProbeConfig, rng: np.random.Generator
) -> ProbeVideo:
    task = env.task
    k = _event_frame(cfg, rng)
    before = env.render()
    goal, yaw = goal_pose(env, task)
    env.set_object_pose(task.obj, goal, yaw)
    after = env.render()
    frames = np.stack([before] * k + [after] * (cfg.num_frames - k))
    details = {"jump_frame": k}
    return ProbeVideo(
        "teleport", record["seed"], frames, record, bool(task.is_success(env)), details=details
    )


def _copy_at_goal(
    env: TabletopEnv, record: dict[str, Any], cfg: ProbeConfig, rng: np.random.Generator
) -> ProbeVideo:
    task = env.task
    k = _event_frame(cfg, rng)
    start, start_yaw = env.object_position(task.obj), _yaw(env, task.obj)
    base = env.render()
    goal, yaw = goal_pose(env, task)
    env.set_object_pose(task.obj, _OUT_OF_SIGHT_M)
    empty = env.render()
    env.set_object_pose(task.obj, goal, yaw)
    at_goal = env.render()
    env.set_object_pose(task.obj, start, start_yaw)
    copy = np.any(at_goal != empty, axis=-1)  # the cube's own pixels at the goal
    with_copy = base.copy()
    with_copy[copy] = at_goal[copy]
    frames = np.stack([base] * k + [with_copy] * (cfg.num_frames - k))
    details = {"appear_frame": k, "copy_px": int(copy.sum())}
    return ProbeVideo("copy_at_goal", record["seed"], frames, record, False, details=details)


def _slide(
    env: TabletopEnv, record: dict[str, Any], cfg: ProbeConfig, rng: np.random.Generator
) -> ProbeVideo:
    task = env.task
    start, start_yaw = env.object_position(task.obj), _yaw(env, task.obj)
    goal, goal_yaw = goal_pose(env, task)
    k0 = int(rng.integers(1, 4))
    moves = max(2, math.ceil(float(np.linalg.norm(goal - start)) / SLIDE_STEP_M))
    moves = min(moves, cfg.num_frames - 3 - k0)  # at least two still frames at the end
    frames = [env.render() for _ in range(k0 + 1)]
    for i in range(1, cfg.num_frames - k0):
        s = min(i / moves, 1.0)
        env.set_object_pose(
            task.obj, start + (goal - start) * s, start_yaw + (goal_yaw - start_yaw) * s
        )
        frames.append(env.render())
    details = {"start_frame": k0, "moves": moves}
    return ProbeVideo(
        "slide",
        record["seed"],
        np.stack(frames),
        record,
        bool(task.is_success(env)),
        details=details,
    )


def _yaw(env: TabletopEnv, name: str) -> float:
    w, _, _, z = env.object_quat(name)
    return 2.0 * math.atan2(z, w)


_MAKERS = {
    "expert": _expert,
    "frozen": _frozen,
    "teleport": _teleport,
    "copy_at_goal": _copy_at_goal,
    "wrong_cube": _wrong_cube,
    "hold": _hold,
    "slide": _slide,
}
