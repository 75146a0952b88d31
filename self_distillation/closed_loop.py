"""Closed-loop success of the full stack in the simulator, against the scripted expert.

The stack runs through the same goal runner as the robot (``executor_core.goal_runner``),
over the simulator adapter ``executor_sim.sim_arm.SimArm`` instead of ROS: imagine a video
from the camera image and the (possibly paraphrased) short prompt, track it with the IDM
(``idm_mode``), make every chunk feasible and retime it, verify with the task's own
success predicate (``Task.is_success``, never a judge), and re-imagine from the home pose
while the verdict is "no" and replans are left. The runner's settings come from
``GoalRunnerConfig`` and mean what they mean on the robot: ``max_replans`` counts
re-imaginings after the first segment; with ``verify_each_chunk`` the predicate is asked
after every chunk and the episode ends when it holds (the robot's task verifier is asked at
the same points). The step budget ``max_steps`` is the goal timeout in simulated time
(imagining takes none). The expert runs the same seed and task with its scripted plan.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calibration.kinematics import kinematic_grasp_gate
from executor_core.atomic_io import write_json_atomic
from executor_core.config_cli import check_non_negative, check_positive
from executor_core.goal_runner import GoalRunner, GoalRunnerConfig, Guard
from executor_core.policy import IdmMode, InverseDynamics, VideoCritic, VideoModel
from executor_core.retiming import RetimeProfile
from executor_sim.env import EnvConfig, TabletopEnv
from executor_sim.env import make_env as make_sim_env
from executor_sim.expert import expert_policy
from executor_sim.grasp_probe import GraspProbe
from executor_sim.sim_arm import SimArm
from executor_sim.tasks import Task, make_task
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.judges.critic import check_critic_judge, make_critic
from self_distillation.task_items import TaskItem
from self_distillation.video_models import load_video_pipeline
from video_models.world_model import VideoWorldModel

logger = logging.getLogger(__name__)
_RUNNER_DEFAULTS = GoalRunnerConfig()


@dataclass(frozen=True)
class ClosedLoopConfig:
    enabled: bool = True
    num_episodes: int = 32
    # re-imaginings after the first segment, as on the robot (3: at most 4 segments)
    max_replans: int = _RUNNER_DEFAULTS.max_replans
    max_steps: int = 240  # control steps (24 s at 10 Hz): the goal timeout in sim time
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
    # The goal runner's settings; defaults are the runner's (docs: GoalRunnerConfig).
    idm_mode: IdmMode = _RUNNER_DEFAULTS.idm_mode
    verify_each_chunk: bool = _RUNNER_DEFAULTS.verify_each_chunk
    replan_from_home: bool = _RUNNER_DEFAULTS.replan_from_home
    home_speed_rad_s: float = _RUNNER_DEFAULTS.home_speed_rad_s
    retime: bool = _RUNNER_DEFAULTS.retime  # false: an ablation the robot cannot run
    retime_profile: RetimeProfile = _RUNNER_DEFAULTS.retime_profile
    # imagined videos per segment; candidate_judge (a judge of the imagined frames and the
    # prompt, self_distillation.judges.critic.CRITIC_JUDGES) picks the one tracked
    num_candidates: int = _RUNNER_DEFAULTS.num_candidates
    candidate_judge: str = "execution_aware"
    critic_path: str = ""  # the execution critic's folder, for candidate_judge "learned"
    # The grasp gate (executor_core.grasp_gate): jaws may close only with the gripper
    # frame at most this high above the table; 0: no gate (the runner's default).
    grasp_gate_max_height_m: float = 0.0
    grasp_gate_measured: bool = False  # also the measured gripper frame (GraspGateConfig)

    def __post_init__(self) -> None:
        check_non_negative(self, "grasp_gate_max_height_m")  # 0: no gate
        check_positive(self, "home_speed_rad_s")
        if self.num_episodes <= 0 or self.max_replans < 0 or self.max_steps <= 0:
            raise ValueError(
                f"need num_episodes > 0, max_replans >= 0, max_steps > 0; got "
                f"{self.num_episodes!r}, {self.max_replans!r}, {self.max_steps!r}"
            )
        self.runner_config(0, 10.0)  # validates the runner's settings
        check_critic_judge(self.candidate_judge, self.critic_path)
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

    def runner_config(self, seed: int, fps_hz: float) -> GoalRunnerConfig:
        """The goal runner's config for one episode: the step budget as its timeout."""
        return GoalRunnerConfig(
            idm_mode=self.idm_mode,
            max_replans=self.max_replans,
            replan_from_home=self.replan_from_home,
            home_speed_rad_s=self.home_speed_rad_s,
            home_rate_hz=fps_hz,
            verify_each_chunk=self.verify_each_chunk,
            retime=self.retime,
            retime_profile=self.retime_profile,
            num_candidates=self.num_candidates,
            timeout_s=self.max_steps / fps_hz,
            seed=seed,
        )


@dataclass
class EpisodeResult:
    item_id: str
    condition: str
    prompt: str
    success: bool
    steps: int
    replans: int  # re-imaginings after the first segment
    executed: np.ndarray  # (N, H, W, 3) uint8 camera frames, first = initial
    imagined: list[np.ndarray]  # one (T, S, S, 3) video per segment
    clipped_actions: int = 0  # targets the simulator clipped to the joint limits
    message: str = ""  # the goal runner's closing message
    # per segment, with several candidates: the one tracked, and how many the critic accepted
    chosen: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    # each time the jaws closed: the grasp point's miss of the task's cube (GraspProbe)
    grasps: list[dict[str, float]] = field(default_factory=list)
    gate_held_points: int = 0  # closing commands the grasp gate held open
    # the grasp point's nearest approach to the cube with the jaws open (GraspProbe)
    nearest_open: dict[str, float] | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "condition": self.condition,
            "prompt": self.prompt,
            "success": self.success,
            "steps": self.steps,
            "replans": self.replans,
            "segments": len(self.imagined),
            "clipped_actions": self.clipped_actions,
            "message": self.message,
            "chosen": self.chosen,
            "accepted": self.accepted,
            "grasps": self.grasps,
            "gate_held_points": self.gate_held_points,
            "nearest_open": self.nearest_open,
        }


def make_env(image_size_px: int) -> TabletopEnv:
    return make_sim_env(EnvConfig(image_size_px=image_size_px))


def load_sim_stack(
    video_model_dir: Path, idm_dir: Path, image_size_px: int = 64
) -> tuple[VideoWorldModel, InverseDynamicsPolicy, TabletopEnv]:
    """What a benchmark worker runs the stack with, on the CPU: a video model of the sim
    presets, the IDM and a simulator rendering ``image_size_px``."""
    video_model = VideoWorldModel(load_video_pipeline(Path(video_model_dir), "sim", "cpu"))
    idm = InverseDynamicsPolicy.from_pretrained(Path(idm_dir), device="cpu")
    return video_model, idm, make_env(image_size_px)


def task_for_item(env: TabletopEnv, item: TaskItem) -> Task:
    """Reset to the item's seed and return the simulator task it describes."""
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


def run_expert(env: TabletopEnv, item: TaskItem, cfg: ClosedLoopConfig) -> EpisodeResult:
    task = task_for_item(env, item)
    obs = env.observation()
    frames = [obs["image"]]
    policy = expert_policy(env, task)
    probe = GraspProbe(env, task)
    steps, success = 0, False
    while steps < cfg.max_steps:
        target = policy(env)
        probe.before_step(target)
        obs = env.step(target)
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
        grasps=probe.attempts,
        nearest_open=probe.nearest_open,
    )


def run_stack(
    env: TabletopEnv,
    item: TaskItem,
    condition: str,
    video_model: VideoModel,
    idm: InverseDynamics,
    cfg: ClosedLoopConfig,
    seed: int,
    critic: VideoCritic | None = None,
) -> EpisodeResult:
    """One goal through the goal runner on the simulator; the runner's verdict is the result.

    Segment k imagines with seed ``seed * 101 + k``; with ``cfg.num_candidates`` > 1,
    ``critic`` (default: ``cfg.candidate_judge``'s) picks each segment's video among that many.
    """
    task = task_for_item(env, item)
    if condition == "demonstrator_solution":
        prompt = item.proposal.solution_text  # the caption the Demonstrator was trained on
    else:
        prompt = choose_prompt(item, cfg.paraphrase, seed)
    arm = SimArm(env, task)
    runner_cfg = cfg.runner_config(seed * 101, env.cfg.fps_hz)
    if critic is None:
        critic = make_critic(cfg.candidate_judge, cfg.num_candidates, cfg.critic_path)
    gate = kinematic_grasp_gate(env.robot, cfg.grasp_gate_max_height_m, cfg.grasp_gate_measured)
    runner = GoalRunner(video_model, idm, env.robot, runner_cfg, critic=critic, grasp_gate=gate)
    result = runner.run(prompt, arm, Guard(runner.config.timeout_s, clock=arm.clock))
    return EpisodeResult(
        item.item_id,
        condition,
        prompt,
        result.success,
        arm.steps,
        result.replans_used,
        np.stack(arm.frames),
        [segment.video for segment in result.segments],
        int(env.num_clipped_actions),
        result.message,
        [segment.chosen for segment in result.segments if segment.critiques],
        [
            sum(c.accepted for c in segment.critiques)
            for segment in result.segments
            if segment.critiques
        ],
        arm.grasp_probe.attempts if arm.grasp_probe is not None else [],
        result.grasp_gate_held_points,
        arm.grasp_probe.nearest_open if arm.grasp_probe is not None else None,
    )


def write_bench_result(
    output: Path,
    script: str,
    argv: list[str],
    workers: int,
    fields: dict[str, Any],
    summary: dict[str, Any],
    records: list[dict[str, Any]],
    started_s: float,
) -> None:
    """A closed-loop benchmark's JSON (its command, the hardware, ``fields``, the wall time,
    the summary and the per-item records), written atomically; prints the command and the
    summary. ``started_s``: ``time.perf_counter()`` when the benchmark began."""
    command = " ".join([script, *argv])
    result = {
        "command": command,
        "hardware": f"{os.cpu_count()}-core CPU, {workers} worker processes",
        **fields,
        "wall_s": time.perf_counter() - started_s,
        "summary": summary,
        "records": records,
    }
    write_json_atomic(output, result)
    print(json.dumps({"command": command, "summary": summary}, indent=2))
