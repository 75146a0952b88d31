"""Executed success: run an imagined video in the simulator and ask the task predicate.

A judge reads pixels; this asks the world. Each video is executed from the initial state it
was imagined from (``env.reset(seed)`` and the item's task) by the IDM through the goal
runner the robot uses (``executor_core.goal_runner.GoalRunner`` over
``executor_sim.sim_arm.SimArm``): one segment, no replanning (``max_replans=0``), the
runner's video model a stand-in that returns the given video. Closed loop by default: one
IDM chunk per imagined goal frame from the simulator's frame and joint state now, every chunk
made feasible and retimed as on the robot. The verdict is the runner's: the task's own
predicate (``Task.is_success``: goal reached and the cube resting, not held), asked after
every chunk (``verify_each_chunk``) and at the end of the segment. ``max_steps`` is the goal
timeout in control steps (imagining takes no simulated time).

Batched and deterministic per video: every execution starts from a fresh reset and seeds
torch with its start's seed (a flow-head IDM samples), whatever process runs it. With
``workers > 1`` a spawn process pool shares the work (one simulator and one IDM per worker,
``torch_threads`` each; in process the same thread count is used, so results do not depend
on ``workers``). It is meant to become the RL reward and the data filter, so each result
carries its cost (``seconds``) and the batch its wall time per video.

    batch = execute_videos(videos, [SimStart.from_item(it) for it in items],
                           ExecutedSuccessConfig(workers=2))
    batch.success_rate, batch.seconds_per_video
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from executor_core.goal_runner import GoalRunner, GoalRunnerConfig, Guard
from executor_core.policy import IdmMode, InverseDynamics, check_idm_mode
from executor_sim.env import EnvConfig, TabletopEnv, make_env
from executor_sim.sim_arm import SimArm
from executor_sim.tasks import TASK_FAMILIES, Task, make_task
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.task_items import TaskItem

logger = logging.getLogger(__name__)
_RUNNER_DEFAULTS = GoalRunnerConfig()


@dataclass(frozen=True)
class SimStart:
    """The initial simulator state a video was imagined from: ``env.reset(seed,
    reset_family)``, then the task (family, cube, target) set on that scene."""

    seed: int
    task_family: str
    obj: str
    target: str = ""  # the stack's lower cube; "" for pick_place and push
    # the family given to env.reset (a push layout is drawn differently); None: the seed's
    reset_family: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if self.task_family not in TASK_FAMILIES:
            raise ValueError(
                f"task_family must be one of {TASK_FAMILIES}, got {self.task_family!r}"
            )
        if not self.obj:
            raise ValueError(f"obj (the cube to move) must be set, got {self.obj!r}")
        if self.reset_family not in (None, *TASK_FAMILIES):
            raise ValueError(
                f"reset_family must be None or one of {TASK_FAMILIES}, got {self.reset_family!r}"
            )

    @classmethod
    def from_item(cls, item: TaskItem) -> SimStart:
        """The start of a simulator task item (its seed and proposal metadata)."""
        meta = item.proposal.metadata
        try:
            return cls(
                item.seed, meta.get("task_family"), meta.get("object"), meta.get("target") or ""
            )
        except ValueError as exc:
            raise ValueError(f"item {item.item_id!r} is not a simulator task: {exc}") from None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SimStart:
        """The start of an episode record (``seed``, ``task_family``, ``object``, ``target``,
        optional ``reset_family``: ``meta/executor_episodes.jsonl``, the probe videos)."""
        missing = [k for k in ("seed", "task_family", "object") if record.get(k) is None]
        if missing:
            raise ValueError(f"episode record lacks {missing}; keys: {sorted(record)}")
        family = record["task_family"]
        target = record.get("target") if family == "stack" else ""
        return cls(
            int(record["seed"]), family, record["object"], target or "", record.get("reset_family")
        )

    def reset(self, env: TabletopEnv) -> Task:
        """Put ``env`` in this start state and return its task (also set as ``env.task``)."""
        env.reset(self.seed, task_family=self.reset_family)
        env.num_clipped_actions = 0
        task = make_task(self.task_family, self.obj, self.target, env.scene)
        env.task = task
        return task


@dataclass(frozen=True)
class ExecutedSuccessConfig:
    idm_path: Path = Path("checkpoints/idm_sim")
    workers: int = 1  # 1: in this process; more: a spawn process pool
    image_size_px: int = 64  # the simulator's camera (the IDM's input size)
    max_steps: int = 240  # control steps (24 s at 10 Hz): the goal timeout in sim time
    idm_mode: IdmMode = _RUNNER_DEFAULTS.idm_mode
    verify_each_chunk: bool = _RUNNER_DEFAULTS.verify_each_chunk
    torch_threads: int = 1  # per execution, in process and in every worker
    keep_frames: bool = False  # return the executed camera frames with each result

    def __post_init__(self) -> None:
        check_idm_mode(self.idm_mode)
        for name in ("workers", "max_steps", "torch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        EnvConfig(image_size_px=self.image_size_px)  # validates the size

    def runner_config(self, seed: int, fps_hz: float) -> GoalRunnerConfig:
        """One segment, no replanning; the step budget as the goal timeout."""
        return GoalRunnerConfig(
            idm_mode=self.idm_mode,
            max_replans=0,
            home_rate_hz=fps_hz,
            verify_each_chunk=self.verify_each_chunk,
            timeout_s=self.max_steps / fps_hz,
            seed=seed,
        )


@dataclass
class Execution:
    """One video executed."""

    success: bool  # the task predicate (the runner's verdict)
    message: str  # the runner's closing message
    steps: int  # control steps executed
    clipped_actions: int  # targets the simulator clipped to the joint limits
    seconds: float  # wall time of this execution (reset, IDM, physics, rendering)
    executed: np.ndarray | None = None  # (N, H, W, 3) uint8 camera frames, with keep_frames

    def to_record(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "message": self.message,
            "steps": self.steps,
            "clipped_actions": self.clipped_actions,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class ExecutionBatch:
    results: list[Execution]
    wall_s: float  # the whole batch, including starting workers and loading the IDM
    workers: int

    @property
    def success_rate(self) -> float:
        return float(np.mean([r.success for r in self.results])) if self.results else 0.0

    @property
    def seconds_per_video(self) -> float:
        """Wall time per video of the batch (what a reward or a filter pays)."""
        return self.wall_s / max(len(self.results), 1)


class GivenVideo:
    """The runner's video model for a video that already exists: it returns that video."""

    def __init__(self, video: np.ndarray) -> None:
        self.video = video

    def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        return self.video


def check_video(video: np.ndarray, index: int) -> None:
    """An imagined video the runner can track: (T >= 2, S, S, 3) uint8."""
    ok = (
        isinstance(video, np.ndarray)
        and video.ndim == 4
        and video.shape[0] >= 2
        and video.shape[1] == video.shape[2]
        and video.shape[3] == 3
        and video.dtype == np.uint8
    )
    if not ok:
        raise ValueError(
            f"video {index} must be (T >= 2, S, S, 3) uint8, got "
            f"{getattr(video, 'shape', None)!r} {getattr(video, 'dtype', None)!r}"
        )


def execute_one(
    env: TabletopEnv,
    idm: InverseDynamics,
    video: np.ndarray,
    start: SimStart,
    cfg: ExecutedSuccessConfig,
    arm_cls: type[SimArm] = SimArm,
) -> Execution:
    """Execute one video from ``start`` (one segment through the goal runner); ``arm_cls``:
    a ``SimArm`` subclass that also records what it sees (a diagnostic)."""
    began = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(start.seed)
        task = start.reset(env)
        arm = arm_cls(env, task)
        runner = GoalRunner(
            GivenVideo(video), idm, env.robot, cfg.runner_config(start.seed, env.cfg.fps_hz)
        )
        result = runner.run(task.prompt, arm, Guard(runner.config.timeout_s, clock=arm.clock))
    return Execution(
        result.success,
        result.message,
        arm.steps,
        int(env.num_clipped_actions),
        time.perf_counter() - began,
        np.stack(arm.frames) if cfg.keep_frames else None,
    )


def video_starts(item_ids: Sequence[str] | None, items: Sequence[TaskItem]) -> list[SimStart]:
    """The simulator start of each video, from the id of the item it was imagined for; a
    ValueError names ids that ``items`` lacks."""
    if item_ids is None:
        raise ValueError("the videos carry no item_id: their starts are unknown")
    by_id = {item.item_id: item for item in items}
    if missing := sorted(set(map(str, item_ids)) - set(by_id)):
        raise ValueError(f"the videos' items {missing[:3]} are not among the items given")
    return [SimStart.from_item(by_id[str(i)]) for i in item_ids]


def execute_videos(
    videos: Sequence[np.ndarray],
    starts: Sequence[SimStart],
    cfg: ExecutedSuccessConfig | None = None,
    idm: InverseDynamics | None = None,
    pool: ExecutionPool | None = None,
) -> ExecutionBatch:
    """Execute every video from its start; results in the order of the inputs.

    ``idm`` overrides ``cfg.idm_path`` (a test double, or a model already loaded); with
    ``workers > 1`` it is pickled to every worker. ``pool``: workers kept from an earlier
    call (its own config and IDM; ``cfg`` must be its config), else with ``workers > 1`` a
    pool is started for this call alone.
    """
    cfg = cfg or ExecutedSuccessConfig()
    if len(videos) != len(starts):
        raise ValueError(f"{len(videos)} videos for {len(starts)} starts")
    for i, video in enumerate(videos):
        check_video(video, i)
    began = time.perf_counter()
    if pool is not None and pool.config != cfg:
        raise ValueError(f"the pool executes with {pool.config!r}, this call asks for {cfg!r}")
    jobs = list(zip(videos, starts, strict=True))
    if pool is not None:
        results = pool.map(jobs)
    elif cfg.workers == 1 or len(jobs) <= 1:
        results = _execute_in_process(jobs, cfg, idm)
    else:
        # for this call alone: no more workers than videos
        with ExecutionPool(replace(cfg, workers=min(cfg.workers, len(jobs))), idm) as one_call:
            results = one_call.map(jobs)
    batch = ExecutionBatch(results, time.perf_counter() - began, cfg.workers)
    logger.info(
        "executed %d videos: %.1f %% succeed, %.2f s per video (%d worker(s))",
        len(results),
        100 * batch.success_rate,
        batch.seconds_per_video,
        cfg.workers,
    )
    return batch


def load_idm(cfg: ExecutedSuccessConfig) -> InverseDynamicsPolicy:
    return InverseDynamicsPolicy.from_pretrained(cfg.idm_path)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _execute_in_process(
    jobs: list[tuple[np.ndarray, SimStart]],
    cfg: ExecutedSuccessConfig,
    idm: InverseDynamics | None,
) -> list[Execution]:
    env = make_env(EnvConfig(image_size_px=cfg.image_size_px))
    try:
        with torch_threads(cfg.torch_threads):
            model = idm if idm is not None else load_idm(cfg)
            return [execute_one(env, model, video, start, cfg) for video, start in jobs]
    finally:
        env.close()


class ExecutionPool:
    """``cfg.workers`` spawned processes, each with its own simulator and IDM, kept for many
    batches: starting one costs seconds (imports, the IDM, the scene), which a caller that
    executes a batch every RL step or demo batch would otherwise pay each time.

    spawn: a forked EGL/MuJoCo context is not safe to reuse in the child. A worker that
    cannot start (no IDM at ``idm_path``, no GL) breaks the pool and ends the call with
    an error; multiprocessing.Pool would start a replacement forever and never return.

        with ExecutionPool(ExecutedSuccessConfig(workers=4)) as pool:
            for videos, starts in batches:
                execute_videos(videos, starts, pool.config, pool=pool)
    """

    def __init__(self, cfg: ExecutedSuccessConfig, idm: InverseDynamics | None = None) -> None:
        if cfg.workers < 2:
            raise ValueError(f"an execution pool needs workers >= 2, got {cfg.workers!r}")
        self.config = cfg
        context = mp.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            cfg.workers, context, _init_worker, (cfg, idm)
        )

    def map(self, jobs: list[tuple[np.ndarray, SimStart]]) -> list[Execution]:
        if self._pool is None:
            raise RuntimeError("the execution pool is closed")
        try:
            return list(self._pool.map(_execute_in_worker, jobs))
        except BrokenProcessPool as exc:
            self.close()
            raise RuntimeError(
                f"an executed-success worker process failed to start or died ({exc}); its "
                f"traceback is in the log above (idm_path {str(self.config.idm_path)!r})"
            ) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ExecutionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_WORKER: dict[str, Any] = {}


def _init_worker(cfg: ExecutedSuccessConfig, idm: InverseDynamics | None) -> None:
    torch.set_num_threads(cfg.torch_threads)
    _WORKER["cfg"] = cfg
    _WORKER["idm"] = idm if idm is not None else load_idm(cfg)
    _WORKER["env"] = make_env(EnvConfig(image_size_px=cfg.image_size_px))


def _execute_in_worker(job: tuple[np.ndarray, SimStart]) -> Execution:
    video, start = job
    return execute_one(_WORKER["env"], _WORKER["idm"], video, start, _WORKER["cfg"])
