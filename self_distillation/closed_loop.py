"""Closed-loop success of the full stack in the simulator, against the scripted expert.

One episode: reset the simulator to the item's seed, set the item's task, then repeat up to
``max_replans`` times: imagine a video from the current camera image and the (possibly
paraphrased) short prompt and execute it on the simulated arm; stop at success or when the
step budget is spent. ``idm_mode`` says how the IDM turns the video into motion
(``executor_core.imagine_to_act``): ``closed_loop`` (default) tracks the imagined frames
one by one, each chunk predicted from the simulator's current frame and joint state to the
next imagined frame, as the executor node does; ``open_loop`` chains all chunks from the
imagined frames up front and executes them blind. The expert runs the same seed and task
with its scripted plan. Success is the simulator's own predicate (``Task.is_success``),
never a judge. With ``replan_from_home`` (default) every segment after the first starts
with the arm moved back to its home pose (gripper held), the pose the video models' training
clips start from (``imagine_to_act.return_home``); the move counts against the step budget.
With ``stop_on_success`` (default) the predicate is checked after every
control step and the episode ends the moment it holds, as sim benchmarks score a policy
(and as the expert's episode ends); otherwise only after each imagine-execute segment, so
a success that a segment's later motion undoes is not counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from executor_core.chunks import return_home
from executor_core.policy import (
    IdmMode,
    check_idm_mode,
    chunk_towards,
    goal_frames,
    imagine_to_act,
    imagine_video,
)
from self_distillation.task_items import TaskItem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClosedLoopConfig:
    enabled: bool = True
    num_episodes: int = 32
    max_replans: int = 4
    max_steps: int = 240  # control steps (24 s at 10 Hz)
    paraphrase: bool = True  # give the stack a paraphrase of the prompt, not the prompt
    image_size_px: int = 64
    conditions: tuple[str, ...] = (
        "expert",
        "executor_rl",
        "executor_distilled",
        "demonstrator_prompt",
        # the Demonstrator given the detailed solution: what the stack does when the
        # imagined video is right (the reference distillation aims at)
        "demonstrator_solution",
    )
    # closed_loop corrects drift every chunk: in simulation on the expert's frames it
    # succeeds far more often than chaining all chunks blind (open_loop)
    idm_mode: IdmMode = "closed_loop"
    stop_on_success: bool = True  # check the task after every control step, end on success
    replan_from_home: bool = True  # re-imagine from the home pose (in the models' distribution)
    home_speed_rad_s: float = 1.0  # fastest joint's speed on the way home

    def __post_init__(self) -> None:
        check_idm_mode(self.idm_mode)
        if not self.home_speed_rad_s > 0:
            raise ValueError(f"home_speed_rad_s must be > 0, got {self.home_speed_rad_s!r}")
        if self.num_episodes <= 0 or self.max_replans <= 0 or self.max_steps <= 0:
            raise ValueError(
                f"need num_episodes, max_replans, max_steps > 0; got {self.num_episodes!r}, "
                f"{self.max_replans!r}, {self.max_steps!r}"
            )
        known = {
            "expert",
            "executor_rl",
            "executor_distilled",
            "demonstrator_prompt",
            "demonstrator_solution",
        }
        unknown = sorted(set(self.conditions) - known)
        if unknown:
            raise ValueError(f"unknown closed-loop conditions {unknown!r}; known {sorted(known)}")


@dataclass
class EpisodeResult:
    item_id: str
    condition: str
    prompt: str
    success: bool
    steps: int
    replans: int
    executed: np.ndarray  # (N, H, W, 3) uint8 camera frames, first = initial
    imagined: list[np.ndarray]  # one (T, S, S, 3) video per plan
    clipped_actions: int = 0  # targets the simulator clipped to the joint limits

    def to_record(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "condition": self.condition,
            "prompt": self.prompt,
            "success": self.success,
            "steps": self.steps,
            "replans": self.replans,
            "clipped_actions": self.clipped_actions,
        }


def make_env(image_size_px: int) -> Any:
    from executor_sim.env import EnvConfig
    from executor_sim.env import make_env as make_sim_env

    return make_sim_env(EnvConfig(image_size_px=image_size_px))


def task_for_item(env: Any, item: TaskItem) -> Any:
    """Reset to the item's seed and return the simulator task it describes."""
    from executor_sim.tasks import make_task

    if item.seed is None:
        raise ValueError(f"item {item.item_id!r} has no simulator seed: not a sim scene")
    meta = item.proposal.metadata
    missing = [k for k in ("task_family", "object") if k not in meta]
    if missing:
        raise ValueError(f"item {item.item_id!r} lacks {missing} in its proposal metadata")
    env.reset(int(item.seed))
    env.num_clipped_actions = 0  # counted per episode
    task = make_task(meta["task_family"], meta["object"], meta.get("target") or "", env.scene)
    env.task = task
    return task


def choose_prompt(item: TaskItem, paraphrase: bool, seed: int) -> str:
    options = list(item.proposal.metadata.get("paraphrases") or [])
    if not paraphrase or not options:
        return item.proposal.task_prompt
    return options[np.random.default_rng([seed, len(item.item_id)]).integers(len(options))]


def run_expert(env: Any, item: TaskItem, cfg: ClosedLoopConfig) -> EpisodeResult:
    from executor_sim.expert import expert_policy

    task = task_for_item(env, item)
    obs = env.observation()
    frames = [obs["image"]]
    policy = expert_policy(env, task)
    steps, success = 0, False
    while steps < cfg.max_steps:
        obs = env.step(policy(env))
        frames.append(obs["image"])
        steps += 1
        if policy.done:
            success = bool(task.is_success(env))
            if success:
                break
    success = success or bool(task.is_success(env))
    return EpisodeResult(
        item.item_id,
        "expert",
        task.prompt,
        success,
        steps,
        0,
        np.stack(frames),
        [],
        int(env.num_clipped_actions),
    )


def run_stack(
    env: Any,
    item: TaskItem,
    condition: str,
    video_model: Any,
    idm: Any,
    cfg: ClosedLoopConfig,
    seed: int,
) -> EpisodeResult:
    """Imagine -> IDM -> execute (open or closed loop), replanning from the new camera image."""
    task = task_for_item(env, item)
    if condition == "demonstrator_solution":
        prompt = item.proposal.solution_text  # the caption the Demonstrator was trained on
    else:
        prompt = choose_prompt(item, cfg.paraphrase, seed)
    run = _StackRun(env, cfg.max_steps, task if cfg.stop_on_success else None)
    imagined = []
    replans, success = 0, False
    while replans < cfg.max_replans and not run.done and not success:
        segment_seed = seed * 101 + replans
        if replans > 0 and cfg.replan_from_home:
            run.go_home(cfg.home_speed_rad_s)
            if run.done:
                break
        if cfg.idm_mode == "open_loop":
            imagined.append(_open_loop_segment(run, prompt, video_model, idm, segment_seed))
        else:
            imagined.append(_closed_loop_segment(run, prompt, video_model, idm, segment_seed))
        replans += 1
        success = run.succeeded or bool(task.is_success(env))
    success = success or run.succeeded  # e.g. the object settled while the arm went home
    return EpisodeResult(
        item.item_id,
        condition,
        prompt,
        success,
        run.steps,
        replans,
        np.stack(run.frames),
        imagined,
        int(env.num_clipped_actions),
    )


class _StackRun:
    """The simulator, its latest observation, the camera frames so far and the step budget.

    Given a task, every step checks it and the run is done once it succeeds.
    """

    def __init__(self, env: Any, max_steps: int, task: Any | None = None) -> None:
        self.env, self.max_steps, self.task = env, max_steps, task
        self.obs = env.observation()
        self.frames: list[np.ndarray] = [self.obs["image"]]
        self.steps = 0
        self.succeeded = False

    @property
    def done(self) -> bool:
        return self.succeeded or self.steps >= self.max_steps

    def go_home(self, speed_rad_s: float) -> None:
        robot = self.env.robot
        move = return_home(
            robot.joint_names,
            self.obs["state"],
            robot.home_rad,
            speed_rad_s,
            self.env.cfg.fps_hz,
        )
        if move is not None:
            self.execute(move.positions_rad)

    def execute(self, targets_rad: np.ndarray) -> None:  # (N, J) absolute joint targets
        for target in targets_rad:
            if self.done:
                return
            self.obs = self.env.step(target)
            self.frames.append(self.obs["image"])
            self.steps += 1
            if self.task is not None:
                self.succeeded = bool(self.task.is_success(self.env))


def _open_loop_segment(
    run: _StackRun, prompt: str, video_model: Any, idm: Any, seed: int
) -> np.ndarray:
    plan = imagine_to_act(
        run.obs["image"],
        prompt,
        video_model,
        idm,
        run.env.robot.joint_names,
        run.obs["state"],
        seed=seed,
    )
    run.execute(plan.trajectory.positions_rad)
    return plan.video


def _closed_loop_segment(
    run: _StackRun, prompt: str, video_model: Any, idm: Any, seed: int
) -> np.ndarray:
    video = imagine_video(run.obs["image"], prompt, video_model, seed)
    for goal in goal_frames(video):
        if run.done:
            break
        chunk = chunk_towards(
            idm, run.obs["image"], goal, run.env.robot.joint_names, run.obs["state"]
        )
        run.execute(chunk.positions_rad)
    return video
