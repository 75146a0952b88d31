"""The goal runner's policy mode without ROS: success, chunk budget, deadline, cancel,
infeasible chunks, joint order.

``StepPolicy`` is a tiny deterministic test double of a visuomotor policy (what
``visuomotor_policy.LeRobotChunkPolicy`` is for real): each chunk moves the joints by a
fixed step per row from the observed state. ``InstantArm`` is a test double of an arm (the
ROS and simulator adapters are the real ones): it "moves" to each trajectory's last point
at once and answers the task verifier from a script.
"""

from __future__ import annotations

import numpy as np
import pytest

from executor_core.goal_runner import (
    NO_VIDEO,
    PHASE_EXECUTING,
    PHASE_VERIFYING,
    GoalObserver,
    GoalRunner,
    GoalRunnerConfig,
    Guard,
    Verdict,
)
from executor_core.policy import chunk_in_order
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.test_doubles import TinyRandomInverseDynamics, TinyRandomVideoModel
from executor_core.types import ActionChunk, JointTrajectory, Observation

ROBOT = RobotDescription.from_yaml(default_robot_path())
HORIZON = 4
RATE_HZ = 10.0


class StepPolicy:
    """Test double: rows q + k * step (k = 1..H) from the observed q, in ``joint_names``."""

    def __init__(self, step_rad: np.ndarray, joint_names: tuple[str, ...] = ROBOT.joint_names):
        self.step_rad, self.joint_names = np.asarray(step_rad, dtype=np.float64), joint_names
        self.resets = 0
        self.calls: list[tuple[np.ndarray, str]] = []

    def reset(self) -> None:
        self.resets += 1
        self.calls.clear()

    def next_chunk(self, observation: Observation, prompt: str) -> ActionChunk:
        self.calls.append((observation.joint_positions_rad.copy(), prompt))
        order = [observation.joint_names.index(n) for n in self.joint_names]
        q = observation.joint_positions_rad[order]
        rows = q[None] + np.arange(1, HORIZON + 1)[:, None] * self.step_rad[None]
        return ActionChunk(rows.astype(np.float32), RATE_HZ, self.joint_names)


class InstantArm:
    def __init__(self, verdicts: list[bool] | None = None) -> None:
        self.q = ROBOT.home_rad.astype(np.float64).copy()
        self.image = np.zeros((24, 24, 3), np.uint8)
        self.sent: list[JointTrajectory] = []
        self.verdicts = list(verdicts) if verdicts is not None else None  # None: no verifier
        self.now_s = 0.0  # a sim clock: time passes as the arm moves
        self.cancel_after_sends: int | None = None
        self.cancel = False
        self.held = 0

    def observe(self, guard: Guard) -> Observation:
        return Observation(self.image, self.now_s, self.q.copy(), ROBOT.joint_names)

    def send(self, trajectory: JointTrajectory, guard: Guard, tolerate_goal_miss: bool) -> None:
        self.sent.append(trajectory)
        if self.cancel_after_sends is not None and len(self.sent) > self.cancel_after_sends:
            self.cancel = True
        self.now_s += trajectory.duration_s
        try:
            guard.check()
        except BaseException:
            self.held += 1
            raise
        self.q = trajectory.positions_rad[-1].copy()

    def reached(self, target_rad: np.ndarray, tolerance_rad: float, guard: Guard) -> float:
        return float(np.max(np.abs(self.q - target_rad)))

    def verdict(self, guard: Guard) -> Verdict | None:
        if self.verdicts is None:
            return None
        ok = self.verdicts.pop(0) if self.verdicts else False
        return Verdict(ok, "yes" if ok else "predicate not met", "/task_success")


class Phases(GoalObserver):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def phase(self, phase: str, progress: float) -> None:
        self.events.append(("phase", phase, progress))

    def imagined(self, segment: int, video: np.ndarray) -> None:
        self.events.append(("imagined", segment))

    def segment_started(self, segment: int) -> None:
        self.events.append(("start", segment))

    def segment_ended(self, segment: int) -> None:
        self.events.append(("end", segment))

    def chunk_sent(self, segment: int, chunk: JointTrajectory) -> None:
        self.events.append(("chunk", segment, chunk.positions_rad.shape))


SMALL_STEP = np.array([0.01, -0.01, 0.0, 0.0, 0.0, 0.0])


def policy_runner(policy: StepPolicy, **overrides: object) -> GoalRunner:
    return GoalRunner.for_policy(policy, ROBOT, GoalRunnerConfig(**overrides))


def test_runs_chunks_until_the_verifier_says_done() -> None:
    policy = StepPolicy(SMALL_STEP)
    arm = InstantArm(verdicts=[False, False, True])
    events = Phases()
    result = policy_runner(policy).run("put the red cube in the bowl", arm, Guard(30.0), events)
    assert result.success, result.message
    assert result.message.startswith("task done (yes): 3 chunk(s), 12 points executed")
    (segment,) = result.segments
    assert segment.video is NO_VIDEO
    assert len(segment.sent) == 3
    assert arm.sent == segment.sent
    assert policy.resets == 1
    # Every chunk is predicted from the state measured after the previous one.
    starts = [q for q, _ in policy.calls]
    np.testing.assert_allclose(starts[1], starts[0] + HORIZON * SMALL_STEP)
    assert {prompt for _, prompt in policy.calls} == {"put the red cube in the bowl"}
    # The chunk's rows are the trajectory's points, 1/rate apart (retimed only if too fast).
    np.testing.assert_allclose(segment.sent[0].time_from_start_s, [0.1, 0.2, 0.3, 0.4])
    assert not any(e[0] == "imagined" for e in events.events)
    assert events.events[0][:2] == ("phase", PHASE_EXECUTING)
    assert 0.0 <= events.events[0][2] < 0.01
    assert ("start", 0) in events.events
    assert events.events[-1] == ("end", 0)
    assert [e[0] for e in events.events].count("chunk") == 3
    progress = [e[2] for e in events.events if e[0] == "phase"]
    assert progress == sorted(progress)
    assert PHASE_VERIFYING in {e[1] for e in events.events if e[0] == "phase"}
    assert result.last_trajectory.positions_rad.shape == (12, 6)


def test_the_chunk_budget_ends_the_goal_with_the_last_verdict() -> None:
    result = policy_runner(StepPolicy(SMALL_STEP), max_chunks=2).run(
        "push", InstantArm(verdicts=[]), Guard(30.0)
    )
    assert result.status == "aborted"
    assert result.message.startswith("task predicate not met after max_chunks 2: /task_success")
    assert len(result.segments[0].sent) == 2
    # Without a verifier, running the budget without a fault is the success.
    alone = policy_runner(StepPolicy(SMALL_STEP), max_chunks=2).run("push", InstantArm(), Guard(30))
    assert alone.success
    assert "no task verifier" in alone.message


def test_the_deadline_aborts_in_the_arms_clock() -> None:
    arm = InstantArm(verdicts=[])
    result = policy_runner(StepPolicy(SMALL_STEP)).run(
        "push", arm, Guard(1.0, clock=lambda: arm.now_s)
    )
    assert result.status == "aborted"
    assert result.message == "goal timeout of 1 s exceeded"
    assert arm.now_s <= 1.0 + HORIZON / RATE_HZ  # stopped within one chunk of the deadline
    assert len(arm.sent) == 3  # 0.4 s per chunk: the third runs past 1 s and is stopped


def test_cancel_holds_and_reports_canceled() -> None:
    arm = InstantArm(verdicts=[])
    arm.cancel_after_sends = 1
    result = policy_runner(StepPolicy(SMALL_STEP)).run(
        "push", arm, Guard(30.0, cancel_requested=lambda: arm.cancel)
    )
    assert result.status == "canceled"
    assert "hold" in result.message
    assert arm.held == 1
    assert len(result.segments[0].sent) == 2


def test_a_chunk_far_outside_the_joint_range_aborts_naming_the_joint() -> None:
    step = np.zeros(6)
    step[1] = 1.0  # shoulder_lift 4 rad beyond home in one chunk: past its limit
    arm = InstantArm(verdicts=[])
    result = policy_runner(StepPolicy(step)).run("push", arm, Guard(30.0))
    assert result.status == "aborted"
    assert result.message.startswith("the policy's trajectory is outside the joint range")
    assert "shoulder_lift" in result.message
    assert arm.sent == []


def test_fast_chunks_are_slowed_to_the_velocity_limits() -> None:
    step = np.zeros(6)
    step[0] = 0.4  # shoulder_pan 0.4 rad per 0.1 s row: 4 rad/s, its limit is 3
    result = policy_runner(StepPolicy(step), max_chunks=1).run("push", InstantArm(), Guard(30))
    (sent,) = result.segments[0].sent
    assert sent.duration_s > HORIZON / RATE_HZ
    speed = np.abs(np.diff(sent.positions_rad[:, 0])) / np.diff(sent.time_from_start_s)
    assert speed.max() <= ROBOT.joints[0].max_velocity_rad_s + 1e-6


def test_a_chunk_in_another_joint_order_is_put_into_the_robots() -> None:
    reversed_names = tuple(reversed(ROBOT.joint_names))
    policy = StepPolicy(SMALL_STEP[::-1].copy(), reversed_names)
    result = policy_runner(policy, max_chunks=1).run("push", InstantArm(), Guard(30.0))
    (sent,) = result.segments[0].sent
    assert sent.joint_names == ROBOT.joint_names
    expected = ROBOT.home_rad + HORIZON * SMALL_STEP
    np.testing.assert_allclose(sent.positions_rad[-1], expected, atol=1e-6)


def test_a_chunk_with_unknown_joints_aborts_naming_them() -> None:
    chunk = ActionChunk(np.zeros((2, 2), np.float32), RATE_HZ, ("shoulder_pan", "elbow"))
    with pytest.raises(ValueError, match=r"missing \['shoulder_lift'.*unknown \['elbow'\]"):
        chunk_in_order(chunk, ROBOT.joint_names)


def test_a_runner_has_either_a_policy_or_the_two_models() -> None:
    video = TinyRandomVideoModel(size_px=16, num_frames=3)
    idm = TinyRandomInverseDynamics(ROBOT.joint_names, ROBOT.home_rad)
    with pytest.raises(ValueError, match="not both"):
        GoalRunner(video, idm, ROBOT, policy=StepPolicy(SMALL_STEP))
    with pytest.raises(ValueError, match="need a video model and an IDM"):
        GoalRunner(None, idm, ROBOT)
    with pytest.raises(ValueError, match="no next_chunk"):
        GoalRunner.for_policy(object(), ROBOT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_chunks"):
        GoalRunnerConfig(max_chunks=-1)
