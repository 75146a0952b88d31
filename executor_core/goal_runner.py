"""The goal runner: one goal, from a task prompt to a verdict, over any arm.

The one goal loop of the stack. ``executor_bringup.executor_node`` drives it over ROS (its
``RosArm`` adapter), the closed-loop benchmark over the MuJoCo simulator directly
(``self_distillation.closed_loop.SimArm``); neither has a loop of its own.

One goal, segment by segment (at most ``max_replans + 1`` segments):

1. from the second segment on, with ``replan_from_home``, move the arm back to the robot
   description's home pose (straight in joint space, gripper held): the video models learn
   from clips that start at home, and an image with the arm elsewhere is out of their
   distribution;
2. observe (a camera frame taken after the last motion ended, and the joint state) and
   imagine a video of the task from it (seed ``seed + segment``); with ``num_candidates``
   > 1, imagine that many (candidate ``j`` with seed ``seed + segment + j *
   CANDIDATE_SEED_STRIDE``, so candidate 0 is the single imagining's video), let the
   critic (``VideoCritic``, e.g. a judge of the imagined frames) read each, and go on with
   the best (``best_candidate``: accepted first, then the highest score);
3. turn the video into motion with the IDM, ``idm_mode``:
   - ``closed_loop`` (default; the better one in simulation): for each imagined frame after
     the first, one IDM chunk from the frame and joint state measured now to that frame,
     sent and waited for before the next; with ``verify_each_chunk`` and a task verifier,
     the goal ends as soon as the verifier says the task is done;
   - ``open_loop``: all chunks from the imagined frames up front, sent as one trajectory;
4. with a grasp gate (``GoalRunner(..., grasp_gate=...)``, ``executor_core.grasp_gate``),
   a gripper closing commanded with the effector high above the table is held open (the
   state is the goal's last gripper command; ``GoalResult.grasp_gate_held_points`` counts
   the points held); then every trajectory sent is first made feasible: targets up to
   ``limit_tolerance_rad`` beyond a joint limit go onto the limit (further is an abort
   naming the joint), then the clock is slowed down to the joint velocity and acceleration limits
   (``executor_core.retiming``); the safety layer below still checks and rejects;
5. verify: does the arm reach the last point (``goal_tolerance_rad``), and what does the
   task verifier say (``Arm.verdict``; None on a real robot without one)? With a verifier
   its answer is the success; without one, reaching the last point is. A "no" starts the
   next segment while replans are left.

``max_replans`` counts re-imaginings after the first segment (0: one segment). Cancel and
the deadline are checked between every step and, by the arm, during motion
(:class:`Guard`): a cancel ends the goal as canceled with the arm told to hold; the
deadline, a failed or rejected trajectory, or an infeasible chunk end it as aborted with a
message that names the cause. The result keeps every chunk that was sent.

**Policy mode** (``GoalRunner.for_policy``): a visuomotor policy (``ChunkPolicy``, e.g. a
LeRobot checkpoint) instead of the two models, one segment with nothing imagined
(``SegmentRecord.video`` is empty). ``policy.reset()`` at the goal's start, then per chunk:
observe -> ``policy.next_chunk(observation, prompt)`` -> the same ``feasible`` (limits,
retiming) -> send and wait -> ask the verifier, until it says yes (succeeded), the deadline
or a cancel, or ``max_chunks`` chunks when that is set (> 0): then the last verdict decides
(without a verifier, having run the budget without a fault is the success, as reaching the
last point is in the other mode). ``max_replans``, ``idm_mode``, ``replan_from_home`` and
``verify_each_chunk`` do not apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from executor_core.chunks import chain_chunks, concatenate_trajectories, return_home
from executor_core.config_cli import check_positive
from executor_core.grasp_gate import GateState, GraspGate
from executor_core.policy import (
    PHASE_CONVERTING,
    ChunkPolicy,
    ClosedLoopInverseDynamics,
    Critique,
    IdmMode,
    InverseDynamics,
    VideoCritic,
    VideoModel,
    best_candidate,
    check_idm_mode,
    chunk_in_order,
    chunk_towards,
    goal_frames,
    imagine_video,
    trajectory_from_video,
)
from executor_core.retiming import (
    RetimeProfile,
    check_retime_profile,
    retime_to_limits,
    within_position_limits,
)
from executor_core.robot_description import RobotDescription
from executor_core.types import JointTrajectory, Observation

logger = logging.getLogger(__name__)

PHASE_EXECUTING = "executing"
PHASE_VERIFYING = "verifying"
CANDIDATE_SEED_STRIDE = 10_000  # candidate j of a segment imagines with seed + j * this
GoalStatus = Literal["succeeded", "aborted", "canceled"]


class GoalCanceled(Exception):  # noqa: N818  (control flow: the operator canceled)
    """The goal was canceled; the arm has been told to hold."""


class GoalAborted(Exception):  # noqa: N818  (control flow: the goal cannot go on)
    """The goal ends early; the message says why."""


@dataclass(frozen=True)
class GoalRunnerConfig:
    idm_mode: IdmMode = "closed_loop"
    max_replans: int = 3  # re-imaginings after the first segment (0: one segment)
    replan_from_home: bool = True  # move home before re-imagining (the models' start pose)
    home_speed_rad_s: float = 1.0  # fastest joint's speed on the way home
    home_rate_hz: float = 10.0  # point spacing of the move home
    limit_tolerance_rad: float = 0.05  # IDM targets this far past a limit go onto it
    goal_tolerance_rad: float = 0.05  # "reached the last point"
    verify_each_chunk: bool = True  # closed loop: ask the task verifier after every chunk
    # Slow every trajectory down to the velocity/acceleration limits before sending. Off
    # only for ablations in simulation: on the robot the safety layer rejects what is
    # infeasible, so the node always retimes (it has no parameter for this).
    retime: bool = True
    # How the clock is slowed (executor_core.retiming): "per_interval" stretches only the
    # intervals that need it; "uniform" stretches the whole chunk by its worst interval.
    retime_profile: RetimeProfile = "per_interval"
    timeout_s: float = 120.0  # the whole goal, in the arm's clock
    seed: int = 0  # segment k imagines with seed + k
    # Imagined videos per segment; with more than one, the runner's critic picks the one
    # tracked (the others are only imagined). Needs a critic.
    num_candidates: int = 1
    # Policy mode only: at most this many chunks per goal (0: until success, the deadline
    # or a cancel).
    max_chunks: int = 0

    def __post_init__(self) -> None:
        check_idm_mode(self.idm_mode)
        check_retime_profile(self.retime_profile)
        if self.max_replans < 0:
            raise ValueError(f"max_replans must be >= 0, got {self.max_replans!r}")
        if self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {self.num_candidates!r}")
        if self.max_chunks < 0:
            raise ValueError(f"max_chunks must be >= 0 (0: no limit), got {self.max_chunks!r}")
        check_positive(self, "home_speed_rad_s", "home_rate_hz", "timeout_s", "goal_tolerance_rad")
        if not 0.0 <= self.limit_tolerance_rad <= 0.2:
            raise ValueError(
                f"limit_tolerance_rad must be in [0, 0.2], got {self.limit_tolerance_rad!r}"
            )


class Guard:
    """Cancel and deadline, in the arm's clock (wall time on a robot, sim time in sim)."""

    def __init__(
        self,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        cancel_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self.timeout_s, self.clock, self.cancel_requested = timeout_s, clock, cancel_requested
        self.deadline = clock() + timeout_s

    def check(self) -> None:
        if self.cancel_requested():
            raise GoalCanceled
        if self.clock() >= self.deadline:  # a step budget: no step once it is spent
            raise GoalAborted(f"goal timeout of {self.timeout_s:g} s exceeded")

    @property
    def remaining_s(self) -> float:
        return self.deadline - self.clock()


@dataclass(frozen=True)
class Verdict:
    success: bool
    message: str  # what the verifier said
    source: str = "the task verifier"  # who said it, e.g. the service's name


class Arm(Protocol):
    """What the runner needs of an arm and its camera (joint order: the robot's)."""

    def observe(self, guard: Guard) -> Observation:
        """The latest camera frame taken after the last motion ended (waiting for one if
        needed), as the models see it, and the joint state; ``joint_positions_rad`` set."""
        ...

    def send(self, trajectory: JointTrajectory, guard: Guard, tolerate_goal_miss: bool) -> None:
        """Execute the trajectory and block until it ends, checking ``guard`` meanwhile.

        When ``guard.check`` raises, tell the arm to hold (or cancel the motion), then
        re-raise. A rejected or failed trajectory raises GoalAborted naming the cause; a
        trajectory that ends outside its goal tolerance does so only when
        ``tolerate_goal_miss`` is false (a closed-loop chunk's miss is the next chunk's job).
        """
        ...

    def reached(self, target_rad: np.ndarray, tolerance_rad: float, guard: Guard) -> float:
        """Max joint error to ``target_rad`` once settled (or when settling timed out)."""
        ...

    def verdict(self, guard: Guard) -> Verdict | None:
        """The task verifier's answer now; None when the arm has no verifier."""
        ...


class GoalObserver:
    """Hooks for what a goal does, all optional (feedback, video saving, recording)."""

    def phase(self, phase: str, progress: float) -> None:
        """``progress`` in [0, 1] over the whole goal (all segments it may take)."""

    def imagined(self, segment: int, video: np.ndarray) -> None:
        """A video was imagined for segment ``segment``; the arm has not moved yet."""

    def segment_started(self, segment: int) -> None:
        """The segment's first trajectory is about to be sent."""

    def segment_ended(self, segment: int) -> None:
        """The segment's motion and verification are over (also on cancel or abort)."""

    def chunk_sent(self, segment: int, chunk: JointTrajectory) -> None:
        """A trajectory of the segment was executed (in closed loop, one per chunk)."""


NO_VIDEO = np.zeros((0, 0, 0, 3), np.uint8)  # a policy-mode segment imagines nothing


@dataclass
class SegmentRecord:
    video: np.ndarray  # (T, S, S, 3) uint8, the imagined segment; NO_VIDEO in policy mode
    sent: list[JointTrajectory] = field(default_factory=list)  # what went to the arm, in order
    # With num_candidates > 1: the critic's reading of every candidate, and which one
    # ``video`` is (empty and 0 with a single candidate).
    critiques: list[Critique] = field(default_factory=list)
    chosen: int = 0


@dataclass
class GoalResult:
    status: GoalStatus
    message: str
    segments: list[SegmentRecord]
    homing: list[JointTrajectory]  # moves home before re-imagining
    grasp_gate_held_points: int = 0  # trajectory points whose closing the grasp gate held

    @property
    def success(self) -> bool:
        return self.status == "succeeded"

    @property
    def replans_used(self) -> int:
        return max(0, len(self.segments) - 1)

    @property
    def last_trajectory(self) -> JointTrajectory | None:
        """The last segment's chunks back to back (their own clocks, no gaps), or None."""
        for segment in reversed(self.segments):
            if segment.sent:
                return concatenate_trajectories(segment.sent)
        return None


class GoalRunner:
    """Runs goals with one video model and one IDM (or one policy, ``for_policy``) on a
    robot; stateless between goals (a policy is reset at each goal's start)."""

    def __init__(
        self,
        video_model: VideoModel | None,
        idm: InverseDynamics | ClosedLoopInverseDynamics | None,
        robot: RobotDescription,
        config: GoalRunnerConfig | None = None,
        *,
        policy: ChunkPolicy | None = None,
        critic: VideoCritic | None = None,
        grasp_gate: GraspGate | None = None,
    ) -> None:
        self.video_model, self.idm, self.robot = video_model, idm, robot
        self.policy, self.critic, self.grasp_gate = policy, critic, grasp_gate
        if grasp_gate is not None and grasp_gate.joint_names != robot.joint_names:
            raise ValueError(
                f"the grasp gate's joints {list(grasp_gate.joint_names)} are not the robot's "
                f"{list(robot.joint_names)}"
            )
        self.config = config or GoalRunnerConfig()
        if critic is not None and not callable(getattr(critic, "critique", None)):
            raise ValueError(f"{type(critic).__name__} has no critique: not a VideoCritic")
        if policy is not None:
            if video_model is not None or idm is not None:
                raise ValueError("give either a policy or a video model and an IDM, not both")
            if critic is not None or self.config.num_candidates > 1:
                raise ValueError("a policy imagines nothing: no critic, num_candidates 1")
            if not callable(getattr(policy, "next_chunk", None)):
                raise ValueError(f"{type(policy).__name__} has no next_chunk: not a ChunkPolicy")
            return
        if video_model is None or idm is None:
            raise ValueError(
                f"need a video model and an IDM (or a policy: GoalRunner.for_policy), got "
                f"{type(video_model).__name__} and {type(idm).__name__}"
            )
        if self.config.num_candidates > 1 and critic is None:
            raise ValueError(
                f"num_candidates {self.config.num_candidates} needs a critic to choose between "
                f"the imagined videos (GoalRunner(..., critic=...))"
            )
        if self.config.idm_mode == "closed_loop" and not hasattr(idm, "predict_chunk"):
            raise ValueError(
                f"idm_mode 'closed_loop' needs an IDM with predict_chunk; "
                f"{type(idm).__name__} has none"
            )

    @classmethod
    def for_policy(
        cls,
        policy: ChunkPolicy,
        robot: RobotDescription,
        config: GoalRunnerConfig | None = None,
        grasp_gate: GraspGate | None = None,
    ) -> GoalRunner:
        """The runner's policy mode: ``policy`` chooses every chunk (module docstring)."""
        return cls(None, None, robot, config, policy=policy, grasp_gate=grasp_gate)

    def run(
        self,
        prompt: str,
        arm: Arm,
        guard: Guard,
        observer: GoalObserver | None = None,
        max_replans: int | None = None,
        seed: int | None = None,
    ) -> GoalResult:
        """Run one goal to its end; never raises for what the arm or the models do."""
        run = _GoalRun(self, prompt, arm, guard, observer or GoalObserver(), max_replans, seed)
        return run.result()

    def feasible(
        self, trajectory: JointTrajectory, q: np.ndarray | None, source: str = "the IDM's"
    ) -> JointTrajectory:
        """Near-miss targets onto the range limit (logged), then slowed to the limits.

        Imagined motion knows nothing of the arm's limits; the path keeps its shape and
        the clock slows down. A target beyond the tolerance is an abort naming the joint.
        """
        try:
            trajectory = within_position_limits(
                trajectory, self.robot, self.config.limit_tolerance_rad
            )
        except ValueError as exc:
            raise GoalAborted(f"{source} trajectory is outside the joint range: {exc}") from None
        if not self.config.retime:
            return trajectory
        return retime_to_limits(trajectory, self.robot, q, profile=self.config.retime_profile)


class _GoalRun:
    """The state of one goal; ``result()`` runs it."""

    def __init__(
        self,
        runner: GoalRunner,
        prompt: str,
        arm: Arm,
        guard: Guard,
        observer: GoalObserver,
        max_replans: int | None,
        seed: int | None,
    ) -> None:
        cfg = runner.config
        self.runner, self.cfg, self.prompt = runner, cfg, prompt
        self.arm, self.guard, self.observer = arm, guard, observer
        self.max_replans = cfg.max_replans if max_replans is None else max_replans
        if self.max_replans < 0:
            raise ValueError(f"max_replans must be >= 0, got {self.max_replans!r}")
        self.seed = cfg.seed if seed is None else seed
        self.segments: list[SegmentRecord] = []
        self.homing: list[JointTrajectory] = []
        self.index = 0  # the segment running
        self.gate: GateState | None = None  # the grasp gate's state, from the first send

    def result(self) -> GoalResult:
        try:
            status, message = self._segments()
        except GoalCanceled:
            status, message = "canceled", "canceled; the arm was told to hold"
        except (GoalAborted, ValueError) as exc:
            status, message = "aborted", str(exc)
        logger.info("goal %r %s: %s", self.prompt, status, message)
        held = self.gate.held_points if self.gate is not None else 0
        return GoalResult(status, message, self.segments, self.homing, held)

    def _progress(self, phase: str, within: float) -> None:
        total = self.max_replans + 1
        self.observer.phase(phase, min(1.0, (self.index + within) / total))

    def _segments(self) -> tuple[GoalStatus, str]:
        if self.runner.policy is not None:
            return self._act(self.runner.policy)
        message = ""
        for index in range(self.max_replans + 1):
            self.index = index
            self.guard.check()
            if index > 0 and self.cfg.replan_from_home:
                self._progress(PHASE_EXECUTING, 0.0)
                self._go_home()
            done, message = self._segment(index)
            if done:
                return "succeeded", message
        return "aborted", message

    def _go_home(self) -> None:
        q = self.arm.observe(self.guard).joint_positions_rad
        robot = self.runner.robot
        move = return_home(
            robot.joint_names, q, robot.home_rad, self.cfg.home_speed_rad_s, self.cfg.home_rate_hz
        )
        if move is None:
            return
        logger.info(
            "returning home before re-imagining: %d points, %.1f s",
            move.positions_rad.shape[0],
            move.duration_s,
        )
        self.arm.send(move, self.guard, tolerate_goal_miss=True)
        self.homing.append(move)

    def _segment(self, index: int) -> tuple[bool, str]:
        """Imagine, execute, verify one segment: (task done, message)."""
        obs = self.arm.observe(self.guard)
        record = self._imagine(index, obs)
        self.segments.append(record)
        self.observer.imagined(index, record.video)
        self.guard.check()
        self._progress(PHASE_EXECUTING, 0.5)
        self.observer.segment_started(index)
        try:
            verdict = self._execute(index, record, obs)
            self._progress(PHASE_VERIFYING, 0.95)
            final = record.sent[-1].positions_rad[-1]
            err = self.arm.reached(final, self.cfg.goal_tolerance_rad, self.guard)
            if verdict is None or not verdict.success:
                verdict = self.arm.verdict(self.guard)
        finally:
            self.observer.segment_ended(index)
        return self._judge(record, err, verdict, last=index == self.max_replans)

    def _imagine(self, index: int, obs: Observation) -> SegmentRecord:
        """The segment's video: the only one, or the critic's pick of ``num_candidates``."""
        count = self.cfg.num_candidates
        videos: list[np.ndarray] = []
        critiques: list[Critique] = []
        for j in range(count):
            self.guard.check()
            within = 0.1 + 0.3 * j / count
            video = imagine_video(
                obs.image_rgb,
                self.prompt,
                self.runner.video_model,
                self.seed + index + j * CANDIDATE_SEED_STRIDE,
                lambda phase, within=within: self._progress(phase, within),
            )
            videos.append(video)
            if count > 1:
                critiques.append(self.runner.critic.critique(video, self.prompt))
        if count == 1:
            return SegmentRecord(videos[0])
        chosen = best_candidate(critiques)
        logger.info(
            "segment %d: candidate %d of %d chosen (%s, score %.3f); accepted: %d",
            index,
            chosen,
            count,
            "accepted" if critiques[chosen].accepted else "none accepted",
            critiques[chosen].score,
            sum(c.accepted for c in critiques),
        )
        return SegmentRecord(videos[chosen], critiques=critiques, chosen=chosen)

    def _execute(self, index: int, record: SegmentRecord, obs: Observation) -> Verdict | None:
        """Send the segment's motion; a verdict when one was asked on the way."""
        if self.cfg.idm_mode == "open_loop":
            self._progress(PHASE_CONVERTING, 0.4)
            q = obs.joint_positions_rad
            names = self.runner.robot.joint_names
            plan = trajectory_from_video(record.video, self.runner.idm, names, q)
            self._send(index, record, self.runner.feasible(self._gated(plan, q), q), False)
            return None
        return self._track(index, record, obs)

    def _track(self, index: int, record: SegmentRecord, obs: Observation) -> Verdict | None:
        """Closed loop: one IDM chunk per imagined frame, from where the arm is now."""
        goals = goal_frames(record.video)
        verdict: Verdict | None = None
        for i, goal in enumerate(goals):
            self.guard.check()
            if i > 0:
                obs = self.arm.observe(self.guard)
            q = obs.joint_positions_rad
            names = self.runner.robot.joint_names
            chunk = chunk_towards(self.runner.idm, obs.image_rgb, goal, names, q)
            self._send(index, record, self.runner.feasible(self._gated(chunk, q), q), True)
            self._progress(PHASE_EXECUTING, 0.5 + 0.45 * (i + 1) / len(goals))
            if self.cfg.verify_each_chunk and i + 1 < len(goals):
                verdict = self.arm.verdict(self.guard)
                if verdict is not None and verdict.success:
                    return verdict
        return verdict

    def _gated(self, trajectory: JointTrajectory, q: np.ndarray | None) -> JointTrajectory:
        """The trajectory through the grasp gate, when the runner has one."""
        gate = self.runner.grasp_gate
        if gate is None:
            return trajectory
        measured = trajectory.positions_rad[0] if q is None else q
        if self.gate is None:  # the goal's first send: the measured jaws start the state
            self.gate = gate.start(measured)
        return gate.apply(trajectory, self.gate, measured)

    def _send(
        self, index: int, record: SegmentRecord, trajectory: JointTrajectory, tolerate: bool
    ) -> None:
        try:
            self.arm.send(trajectory, self.guard, tolerate_goal_miss=tolerate)
        finally:
            # Sent, even if it ended early: the record says what the arm was told.
            record.sent.append(trajectory)
            self.observer.chunk_sent(index, trajectory)

    def _judge(
        self, record: SegmentRecord, err: float, verdict: Verdict | None, last: bool
    ) -> tuple[bool, str]:
        points = sum(t.positions_rad.shape[0] for t in record.sent)
        executed = f"{points} points executed, final joint error {err:.4f} rad"
        reached = err <= self.cfg.goal_tolerance_rad
        missed = (
            f"arm did not reach the last point: max joint error {err:.4f} rad > "
            f"goal_tolerance_rad {self.cfg.goal_tolerance_rad:g}"
        )
        replans = len(self.segments) - 1
        if verdict is None:  # no verifier: reaching the last point is the success
            if reached:
                return True, f"done: {executed}"
            return False, f"{missed} after {replans} replan(s)"
        if verdict.success:
            return True, f"task done ({verdict.message}): {executed}"
        also = "" if reached else f"; {missed}"
        return False, (
            f"task predicate not met after {replans} replan(s): {verdict.source} says "
            f"{verdict.message!r}{also}"
        )

    # -- policy mode
    def _act(self, policy: ChunkPolicy) -> tuple[GoalStatus, str]:
        """Observe -> the policy's next chunk -> feasible -> send -> verdict, until done."""
        self.guard.check()
        policy.reset()
        record = SegmentRecord(NO_VIDEO)
        self.segments.append(record)
        self._policy_progress(PHASE_EXECUTING, 0)
        self.observer.segment_started(0)
        verdict: Verdict | None = None
        names = self.runner.robot.joint_names
        try:
            while self.cfg.max_chunks == 0 or len(record.sent) < self.cfg.max_chunks:
                self.guard.check()
                obs = self.arm.observe(self.guard)
                chunk = chunk_in_order(policy.next_chunk(obs, self.prompt), names)
                q = obs.joint_positions_rad
                trajectory = chain_chunks([chunk], names)
                trajectory = self.runner.feasible(self._gated(trajectory, q), q, "the policy's")
                self._send(0, record, trajectory, True)
                self._policy_progress(PHASE_VERIFYING, len(record.sent))
                verdict = self.arm.verdict(self.guard)
                if verdict is not None and verdict.success:
                    break
                self._policy_progress(PHASE_EXECUTING, len(record.sent))
        finally:
            self.observer.segment_ended(0)
        return self._policy_judge(record, verdict)

    def _policy_progress(self, phase: str, chunks_sent: int) -> None:
        """Progress: the larger of the time used and (with ``max_chunks``) the chunks sent."""
        used = 1.0 - self.guard.remaining_s / self.guard.timeout_s
        if self.cfg.max_chunks:
            used = max(used, chunks_sent / self.cfg.max_chunks)
        self.observer.phase(phase, min(1.0, max(0.0, used)))

    def _policy_judge(
        self, record: SegmentRecord, verdict: Verdict | None
    ) -> tuple[GoalStatus, str]:
        points = sum(t.positions_rad.shape[0] for t in record.sent)
        executed = f"{len(record.sent)} chunk(s), {points} points executed"
        if verdict is None:  # no verifier: the chunk budget ran without a fault
            return "succeeded", f"done: max_chunks spent, {executed} (no task verifier)"
        if verdict.success:
            return "succeeded", f"task done ({verdict.message}): {executed}"
        return "aborted", (
            f"task predicate not met after max_chunks {self.cfg.max_chunks}: {verdict.source} "
            f"says {verdict.message!r} ({executed})"
        )
