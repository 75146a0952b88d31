"""The goal runner without ROS: replanning, verdicts, cancel, deadline, infeasible chunks.

``ScriptedArm`` is a test double of an arm (what the ROS adapter and the simulator adapter
provide for real): it "moves" instantly to each trajectory's last point, answers the task
verifier from a script, and can fail a send (an e-stop mid-chunk). The models are the tiny
random test doubles of the policy interface.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from executor_core.goal_runner import (
    CANDIDATE_SEED_STRIDE,
    PHASE_EXECUTING,
    PHASE_VERIFYING,
    GoalAborted,
    GoalObserver,
    GoalRunner,
    GoalRunnerConfig,
    Guard,
    Verdict,
)
from executor_core.grasp_gate import GraspGate, GraspGateConfig
from executor_core.policy import PHASE_IMAGINING, Critique, best_candidate
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.test_doubles import TinyRandomInverseDynamics, TinyRandomVideoModel
from executor_core.types import ActionChunk, JointTrajectory, Observation

torch.set_num_threads(1)
ROBOT = RobotDescription.from_yaml(default_robot_path())
NUM_FRAMES = 5  # 4 goal frames: 4 chunks per closed-loop segment


class ScriptedArm:
    def __init__(self, verdicts: list[bool] | None = None, miss_rad: float = 0.0) -> None:
        self.q = ROBOT.home_rad.astype(np.float64).copy()
        self.image = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
        self.sent: list[JointTrajectory] = []
        self.verdicts = list(verdicts) if verdicts is not None else None  # None: no verifier
        self.asked = 0
        self.miss_rad = miss_rad  # the arm stops this far short of every last point
        self.fail_on_send: int | None = None  # the n-th send fails (an e-stop)
        self.held = 0
        self.cancel_after_sends: int | None = None
        self.cancel = False

    def observe(self, guard: Guard) -> Observation:
        return Observation(self.image, 0.0, self.q.copy(), ROBOT.joint_names)

    def send(self, trajectory: JointTrajectory, guard: Guard, tolerate_goal_miss: bool) -> None:
        self.sent.append(trajectory)
        if self.cancel_after_sends is not None and len(self.sent) > self.cancel_after_sends:
            self.cancel = True
        try:
            guard.check()
        except BaseException:
            self.held += 1
            raise
        if self.fail_on_send is not None and len(self.sent) == self.fail_on_send:
            raise GoalAborted("trajectory failed (error_code -4): e-stop engaged")
        self.q = trajectory.positions_rad[-1].copy()
        self.q[0] -= self.miss_rad  # shoulder_pan, mid-range

    def reached(self, target_rad: np.ndarray, tolerance_rad: float, guard: Guard) -> float:
        return float(np.max(np.abs(self.q - target_rad)))

    def verdict(self, guard: Guard) -> Verdict | None:
        if self.verdicts is None:
            return None
        self.asked += 1
        ok = self.verdicts.pop(0) if self.verdicts else False
        return Verdict(ok, "yes" if ok else "predicate not met", "/task_success")


class Recorder(GoalObserver):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def phase(self, phase: str, progress: float) -> None:
        self.events.append(("phase", phase, progress))

    def imagined(self, segment: int, video: np.ndarray) -> None:
        self.events.append(("imagined", segment, video.shape))

    def segment_started(self, segment: int) -> None:
        self.events.append(("start", segment))

    def segment_ended(self, segment: int) -> None:
        self.events.append(("end", segment))


def runner(**overrides: object) -> GoalRunner:
    torch.manual_seed(0)
    video = TinyRandomVideoModel(size_px=32, num_frames=NUM_FRAMES)
    idm = TinyRandomInverseDynamics(ROBOT.joint_names, ROBOT.home_rad)
    return GoalRunner(video, idm, ROBOT, GoalRunnerConfig(**overrides))


def test_closed_loop_ends_when_the_verifier_says_done() -> None:
    arm = ScriptedArm(verdicts=[False, True])
    obs = Recorder()
    result = runner(max_replans=3).run("put the red cube in the bowl", arm, Guard(5.0), obs)
    assert result.success, result.message
    assert result.message.startswith("task done (yes)")
    assert len(result.segments) == 1
    assert len(result.segments[0].sent) == 2
    assert arm.sent == result.segments[0].sent
    phases = [e[1] for e in obs.events if e[0] == "phase"]
    assert phases[0] == PHASE_IMAGINING
    assert PHASE_EXECUTING in phases
    progress = [e[2] for e in obs.events if e[0] == "phase"]
    assert progress == sorted(progress)
    assert 0 < progress[-1] <= 1
    assert ("start", 0) in obs.events
    assert obs.events[-1] == ("end", 0)


def test_no_means_replan_from_home_until_replans_are_spent() -> None:
    arm = ScriptedArm(verdicts=[])  # always "no"
    result = runner(max_replans=2).run("stack the cubes", arm, Guard(5.0))
    assert result.status == "aborted"
    assert result.message.startswith("task predicate not met after 2 replan(s)")
    assert "/task_success says 'predicate not met'" in result.message
    assert len(result.segments) == 3
    assert result.replans_used == 2
    # Re-imagining first moves home (unless the arm is within 0.05 rad of it already).
    assert 1 <= len(result.homing) <= 2
    for move in result.homing:
        np.testing.assert_allclose(move.positions_rad[-1][:-1], ROBOT.home_rad[:-1], atol=1e-9)
    # 4 chunks per segment, plus the moves home, went to the arm in order.
    assert len(arm.sent) == 3 * (NUM_FRAMES - 1) + len(result.homing)
    # Segment k imagines with seed + k: different videos.
    assert not np.array_equal(result.segments[0].video, result.segments[1].video)


def test_without_a_verifier_reaching_the_last_point_is_the_success() -> None:
    assert runner(max_replans=0).run("push", ScriptedArm(), Guard(5.0)).success
    missed = runner(max_replans=1).run("push", ScriptedArm(miss_rad=0.2), Guard(5.0))
    assert missed.status == "aborted"
    assert len(missed.segments) == 2
    assert missed.message.startswith("arm did not reach the last point")
    assert missed.message.endswith("after 1 replan(s)")


def test_open_loop_sends_one_retimed_trajectory_per_segment() -> None:
    result = runner(idm_mode="open_loop", max_replans=0).run("push", ScriptedArm(), Guard(5.0))
    assert result.success
    (segment,) = result.segments
    (sent,) = segment.sent
    assert sent.positions_rad.shape[0] == (NUM_FRAMES - 1) * 4  # 4 points per chunk


def test_fast_chunks_are_slowed_to_the_velocity_limits() -> None:
    run = runner()
    q = ROBOT.home_rad.astype(np.float64)
    jump = q.copy()
    jump[0] += 0.5  # shoulder_pan 0.5 rad in one 0.1 s period: beyond its velocity limit
    fast = JointTrajectory(ROBOT.joint_names, jump[None], np.array([0.1]))
    slow = run.feasible(fast, q)
    assert slow.duration_s > 0.1
    assert 0.5 / slow.duration_s <= ROBOT.joints[0].max_velocity_rad_s + 1e-9


def test_a_chunk_far_outside_the_joint_range_aborts_naming_it() -> None:
    far = np.array([j.upper_rad + 1.0 for j in ROBOT.joints])
    trajectory = JointTrajectory(ROBOT.joint_names, far[None], np.array([5.0]))
    with pytest.raises(GoalAborted, match="outside the joint range"):
        runner().feasible(trajectory, ROBOT.home_rad)


def test_an_e_stop_mid_chunk_aborts_and_keeps_what_was_sent() -> None:
    arm = ScriptedArm(verdicts=[])
    arm.fail_on_send = 2
    result = runner().run("push", arm, Guard(5.0))
    assert result.status == "aborted"
    assert "e-stop" in result.message
    assert len(result.segments) == 1
    assert len(result.segments[0].sent) == 2
    assert result.last_trajectory is not None
    assert result.last_trajectory.positions_rad.shape[0] == 8


def test_cancel_mid_segment_holds_and_reports_canceled() -> None:
    arm = ScriptedArm(verdicts=[])
    arm.cancel_after_sends = 1
    result = runner().run("push", arm, Guard(5.0, cancel_requested=lambda: arm.cancel))
    assert result.status == "canceled"
    assert "hold" in result.message
    assert arm.held == 1
    assert len(arm.sent) == 2


def test_the_deadline_aborts_in_the_arms_clock() -> None:
    now = [0.0]

    class SlowArm(ScriptedArm):
        def send(self, trajectory, guard, tolerate_goal_miss):
            now[0] += trajectory.duration_s  # a sim clock: time passes as the arm moves
            super().send(trajectory, guard, tolerate_goal_miss)

    arm = SlowArm(verdicts=[])
    result = runner(max_replans=5).run("push", arm, Guard(1.0, clock=lambda: now[0]))
    assert result.status == "aborted"
    assert result.message == "goal timeout of 1 s exceeded"
    assert now[0] <= 1.0 + 0.5  # stopped within one chunk of the deadline


def test_same_seed_same_chunks() -> None:
    first = runner(max_replans=1).run("push", ScriptedArm(verdicts=[]), Guard(5.0), seed=7)
    again = runner(max_replans=1).run("push", ScriptedArm(verdicts=[]), Guard(5.0), seed=7)
    for a, b in zip(first.segments, again.segments, strict=True):
        for ca, cb in zip(a.sent, b.sent, strict=True):
            np.testing.assert_array_equal(ca.positions_rad, cb.positions_rad)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="idm_mode"):
        GoalRunnerConfig(idm_mode="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_replans"):
        GoalRunnerConfig(max_replans=-1)
    with pytest.raises(ValueError, match="timeout_s"):
        GoalRunnerConfig(timeout_s=0)
    with pytest.raises(ValueError, match="max_replans"):
        runner().run("push", ScriptedArm(), Guard(1.0), max_replans=-2)


def test_verifying_is_the_last_phase_of_a_segment() -> None:
    obs = Recorder()
    runner(max_replans=0).run("push", ScriptedArm(verdicts=[]), Guard(5.0), obs)
    phases = [e[1] for e in obs.events if e[0] == "phase"]
    assert phases[-1] == PHASE_VERIFYING


def test_retiming_can_be_switched_off_for_sim_ablations() -> None:
    q = ROBOT.home_rad.astype(np.float64)
    jump = q.copy()
    jump[0] += 0.5
    fast = JointTrajectory(ROBOT.joint_names, jump[None], np.array([0.1]))
    assert runner(retime=False).feasible(fast, q) is fast
    assert runner().feasible(fast, q).duration_s > 0.1


def test_retime_profile_reaches_the_retiming() -> None:
    q = ROBOT.home_rad.astype(np.float64)
    points = np.tile(q, (6, 1))
    points[3:, 1] += 0.25  # one jump in the middle of an otherwise resting chunk
    chunk = JointTrajectory(ROBOT.joint_names, points, 0.1 * np.arange(1, 7))
    assert GoalRunnerConfig().retime_profile == "per_interval"  # the robot's default
    fast = runner().feasible(chunk, q)
    slow = runner(retime_profile="uniform").feasible(chunk, q)
    assert fast.metadata["retime_profile"] == "per_interval"
    assert "retime_profile" not in slow.metadata
    assert 0.6 < fast.duration_s < slow.duration_s
    with pytest.raises(ValueError, match="'cubic'"):
        GoalRunnerConfig(retime_profile="cubic")


# -- several imagined candidates per segment, a critic picks one
class ScriptedCritic:
    """Test double of a video critic (a judge of imagined frames): answers from a script, in
    call order, and keeps what it was shown."""

    def __init__(self, critiques: list[Critique]) -> None:
        self.critiques = list(critiques)
        self.shown: list[np.ndarray] = []

    def critique(self, video: np.ndarray, prompt: str) -> Critique:
        self.shown.append(video)
        return self.critiques.pop(0)


def test_best_candidate_prefers_accepted_then_score_then_the_first() -> None:
    rejected_high = Critique(False, 0.9)
    accepted_low, accepted_high = Critique(True, 0.4), Critique(True, 0.8)
    assert best_candidate([rejected_high, accepted_low, accepted_high]) == 2
    assert best_candidate([rejected_high, accepted_low]) == 1
    assert best_candidate([Critique(False, 0.2), Critique(False, 0.5)]) == 1
    assert best_candidate([Critique(True, 0.5), Critique(True, 0.5)]) == 0  # a tie: the first
    with pytest.raises(ValueError, match="no candidates"):
        best_candidate([])


def test_the_critics_pick_is_the_video_tracked() -> None:
    critic = ScriptedCritic([Critique(False, 0.9), Critique(True, 0.3), Critique(False, 0.1)])
    torch.manual_seed(0)
    video_model = TinyRandomVideoModel(size_px=32, num_frames=NUM_FRAMES)
    idm = TinyRandomInverseDynamics(ROBOT.joint_names, ROBOT.home_rad)
    cfg = GoalRunnerConfig(max_replans=0, num_candidates=3, seed=7)
    run = GoalRunner(video_model, idm, ROBOT, cfg, critic=critic)
    arm = ScriptedArm(verdicts=[False, False, False, True])
    obs = Recorder()
    result = run.run("put the red cube in the bowl", arm, Guard(5.0), obs)
    assert result.success, result.message
    (segment,) = result.segments
    assert [c.score for c in segment.critiques] == [0.9, 0.3, 0.1]
    assert segment.chosen == 1  # the only accepted one, though another scored higher
    assert len(critic.shown) == 3
    # candidate j imagines with seed + j * CANDIDATE_SEED_STRIDE: three different videos,
    # the one tracked is the second, and candidate 0 is what one imagining would track
    assert not np.array_equal(critic.shown[0], critic.shown[1])
    np.testing.assert_array_equal(segment.video, critic.shown[1])
    again = video_model(arm.image, "put the red cube in the bowl", 7 + CANDIDATE_SEED_STRIDE)
    np.testing.assert_array_equal(segment.video, again)
    single = runner(max_replans=0, seed=7).run(
        "put the red cube in the bowl", ScriptedArm(), Guard(5.0)
    )
    np.testing.assert_array_equal(single.segments[0].video, critic.shown[0])
    assert single.segments[0].critiques == []
    assert single.segments[0].chosen == 0
    # the observer sees the chosen video only, once
    assert [e for e in obs.events if e[0] == "imagined"] == [("imagined", 0, segment.video.shape)]
    # the goal's chunks were computed towards the chosen video's frames
    assert len(segment.sent) == 4


def test_candidates_need_a_critic_and_a_policy_takes_neither() -> None:
    torch.manual_seed(0)
    video_model = TinyRandomVideoModel(size_px=32, num_frames=NUM_FRAMES)
    idm = TinyRandomInverseDynamics(ROBOT.joint_names, ROBOT.home_rad)
    with pytest.raises(ValueError, match="num_candidates 2 needs a critic"):
        GoalRunner(video_model, idm, ROBOT, GoalRunnerConfig(num_candidates=2))
    with pytest.raises(ValueError, match="num_candidates must be >= 1, got 0"):
        GoalRunnerConfig(num_candidates=0)
    with pytest.raises(ValueError, match="not a VideoCritic"):
        GoalRunner(video_model, idm, ROBOT, critic=object())


def test_cancel_while_imagining_candidates_sends_nothing() -> None:
    canceled = [False]

    class CancelingCritic(ScriptedCritic):
        def critique(self, video: np.ndarray, prompt: str) -> Critique:
            canceled[0] = True  # the operator cancels while the first candidate is judged
            return super().critique(video, prompt)

    critic = CancelingCritic([Critique(True, 1.0)] * 4)
    torch.manual_seed(0)
    video_model = TinyRandomVideoModel(size_px=32, num_frames=NUM_FRAMES)
    idm = TinyRandomInverseDynamics(ROBOT.joint_names, ROBOT.home_rad)
    run = GoalRunner(video_model, idm, ROBOT, GoalRunnerConfig(num_candidates=4), critic=critic)
    arm = ScriptedArm(verdicts=[])
    result = run.run("push", arm, Guard(5.0, cancel_requested=lambda: canceled[0]))
    assert result.status == "canceled"
    assert len(critic.shown) == 1  # no second candidate was imagined
    assert arm.sent == []


def test_a_prompt_the_critic_cannot_read_aborts_naming_it() -> None:
    class UnreadableCritic:
        def critique(self, video: np.ndarray, prompt: str) -> Critique:
            raise ValueError(f"cannot tell the task of prompt {prompt!r}")

    torch.manual_seed(0)
    video_model = TinyRandomVideoModel(size_px=32, num_frames=NUM_FRAMES)
    idm = TinyRandomInverseDynamics(ROBOT.joint_names, ROBOT.home_rad)
    cfg = GoalRunnerConfig(num_candidates=2)
    run = GoalRunner(video_model, idm, ROBOT, cfg, critic=UnreadableCritic())
    arm = ScriptedArm(verdicts=[])
    result = run.run("dance a jig", arm, Guard(5.0))
    assert result.status == "aborted"
    assert "'dance a jig'" in result.message
    assert arm.sent == []


class ClosingIdm:
    """An IDM that keeps the arm where it is and commands the jaws shut (-0.15 rad)."""

    def predict_chunk(self, frames: np.ndarray, joint_positions_rad: np.ndarray) -> ActionChunk:
        targets = np.repeat(np.asarray(joint_positions_rad, np.float32)[None], 3, axis=0)
        targets[:, -1] = -0.15
        return ActionChunk(targets, 10.0, ROBOT.joint_names)


@pytest.mark.parametrize(("height_m", "held"), [(0.20, True), (0.01, False)])
def test_the_grasp_gate_holds_closings_above_the_table_in_every_chunk_sent(
    height_m: float, held: bool
) -> None:
    gate = GraspGate(GraspGateConfig(0.03), lambda q: height_m, ROBOT.joint_names)
    video = TinyRandomVideoModel(size_px=32, num_frames=NUM_FRAMES)
    run = GoalRunner(video, ClosingIdm(), ROBOT, GoalRunnerConfig(max_replans=0), grasp_gate=gate)
    arm = ScriptedArm()
    arm.q[-1] = 0.7  # jaws open
    result = run.run("pick up the red cube", arm, Guard(5.0))
    grippers = np.concatenate([t.positions_rad[:, -1] for t in arm.sent])
    points = sum(t.positions_rad.shape[0] for t in arm.sent)
    if held:
        np.testing.assert_allclose(grippers, 0.7)
        assert result.grasp_gate_held_points == 3 * (NUM_FRAMES - 1)  # every IDM row
    else:
        assert grippers[-1] == pytest.approx(-0.15)
        assert result.grasp_gate_held_points == 0
    assert points >= 3 * (NUM_FRAMES - 1)


def test_the_grasp_gate_must_know_the_robots_joints() -> None:
    names = ("a", "gripper")
    gate = GraspGate(GraspGateConfig(0.03), lambda q: 0.0, names)
    video = TinyRandomVideoModel(size_px=32, num_frames=NUM_FRAMES)
    with pytest.raises(ValueError, match="the grasp gate's joints"):
        GoalRunner(video, ClosingIdm(), ROBOT, grasp_gate=gate)
