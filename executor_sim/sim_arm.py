"""The goal runner's arm over the tabletop simulator, stepped directly (no ROS).

:class:`SimArm` is the simulator adapter of ``executor_core.goal_runner.Arm``: the same
runner that ``executor_node`` drives over ROS runs here on a :class:`TabletopEnv`, so an
evaluation measures the loop the robot runs. Time is the simulator's: each control step
advances ``1 / fps_hz`` seconds and :meth:`clock` is what the runner's ``Guard`` reads, so a
goal timeout is a budget of control steps (imagining takes no simulated time). A
trajectory is sampled at the control rate from the measured state as ``sim_arm_node``'s
controller samples it (``executor_core.chunks.sample_at_rate``, ``interpolation`` as the
node's parameter, splines by default); an IDM chunk at that rate is executed point for
point. The task verifier is the scene task's own success predicate. ``grasp_probe`` records
where the jaws were each time they closed (``executor_sim.grasp_probe``).
"""

from __future__ import annotations

import numpy as np

from executor_core.chunks import sample_at_rate
from executor_core.goal_runner import Guard, Verdict
from executor_core.trajectory_control import Interpolation
from executor_core.types import JointTrajectory, Observation
from executor_sim.env import TabletopEnv
from executor_sim.grasp_probe import GraspProbe
from executor_sim.tasks import Task


class SimArm:
    """A TabletopEnv as the runner's arm; records every camera frame it steps through."""

    def __init__(
        self, env: TabletopEnv, task: Task | None = None, interpolation: Interpolation = "spline"
    ) -> None:
        if interpolation not in ("spline", "linear"):
            raise ValueError(f"interpolation must be 'spline' or 'linear', got {interpolation!r}")
        self.env, self.task, self.interpolation = env, task, interpolation
        self.obs = env.observation()
        self.frames: list[np.ndarray] = [self.obs["image"]]  # (H, W, 3) uint8, first = initial
        self.steps = 0
        # where the jaws were each time they closed (a diagnostic; grasp tasks only)
        self.grasp_probe = GraspProbe(env, task) if task is not None else None

    def clock(self) -> float:
        """Simulated seconds since the adapter was made."""
        return self.steps / self.env.cfg.fps_hz

    def observe(self, guard: Guard) -> Observation:
        return Observation(
            image_rgb=self.obs["image"],
            stamp_s=self.clock(),
            joint_positions_rad=self.env.joint_positions_rad(),
            joint_names=self.env.robot.joint_names,
        )

    def send(self, trajectory: JointTrajectory, guard: Guard, tolerate_goal_miss: bool) -> None:
        if tuple(trajectory.joint_names) != tuple(self.env.robot.joint_names):
            raise ValueError(
                f"trajectory joints {trajectory.joint_names!r} differ from the simulator's "
                f"{self.env.robot.joint_names!r}"
            )
        q = self.env.joint_positions_rad()
        targets = sample_at_rate(trajectory, q, self.env.cfg.fps_hz, self.interpolation)
        for target in targets:
            guard.check()  # the step budget (deadline in sim time) can end a chunk midway
            if self.grasp_probe is not None:
                self.grasp_probe.before_step(target)
            self.obs = self.env.step(target)
            self.frames.append(self.obs["image"])
            self.steps += 1

    def reached(self, target_rad: np.ndarray, tolerance_rad: float, guard: Guard) -> float:
        return float(np.max(np.abs(self.env.joint_positions_rad() - np.asarray(target_rad))))

    def verdict(self, guard: Guard) -> Verdict | None:
        if self.task is None:
            return None
        ok = bool(self.task.is_success(self.env))
        said = "predicate met" if ok else "predicate not met"
        return Verdict(ok, f"task {self.task.prompt!r}: {said}", "the simulator")
