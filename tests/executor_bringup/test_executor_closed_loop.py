"""executor_node with ``idm_mode: closed_loop``, in-process over real DDS.

``FakeArm`` is a test double of the FollowJointTrajectory server the node sends to (the
safety node's proxy in the graph): it records every goal, "moves" for the trajectory's
duration, then jumps to the last point and publishes it on ``joint_states``. The test
publishes a 10 Hz camera itself. The models are the tiny random test doubles: 5 imagined
frames, so a segment is 4 chunks of 4 points.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from control_msgs.action import FollowJointTrajectory
from executor_interfaces.action import ExecuteTask
from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_helpers import (
    RosSession,
    SafeActionClient,
    fresh_domain_id,
    node_process,
    result_of,
    stop_process,
    wait_for,
)
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger

from executor_bringup.executor_node import ExecutorNode
from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.qos import sensor_qos
from executor_core.robot_description import RobotDescription, default_robot_path

pytestmark = pytest.mark.ros
NS = "/executor_closed_loop_test"
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
NUM_FRAMES = 5  # TinyRandomVideoModel in the node's test-double setup
CHUNK = 4  # frame_stride: points per IDM chunk


class FakeArm:
    """FollowJointTrajectory server standing in for the safety node + arm."""

    def __init__(self, node: Node, controller: str) -> None:
        self.q = np.zeros(6)
        self.goals: list = []  # trajectory_msgs/JointTrajectory per goal
        self.q_at_goal: list[np.ndarray] = []  # where the arm was when each goal arrived
        self.canceled = 0
        # goals from this index on run until canceled (at most 60 s): a cancel then always
        # finds a chunk in flight, however the runner schedules the threads
        self.stall_from: int | None = None
        # goals from this index on are stopped half-way as the safety node's e-stop does
        self.estop_from: int | None = None
        self._lock = threading.Lock()
        self._js = node.create_publisher(JointState, "joint_states", sensor_qos())
        self._server = ActionServer(
            node,
            FollowJointTrajectory,
            f"{controller}/follow_joint_trajectory",
            execute_callback=self._execute,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )

    def publish_state(self) -> None:
        with self._lock:
            q = self.q.tolist()
        self._js.publish(JointState(name=NAMES, position=q))

    def _execute(self, gh: object) -> FollowJointTrajectory.Result:
        traj = gh.request.trajectory
        with self._lock:
            self.goals.append(traj)
            self.q_at_goal.append(self.q.copy())
            stall = self.stall_from is not None and len(self.goals) > self.stall_from
            estop = self.estop_from is not None and len(self.goals) > self.estop_from
        last = traj.points[-1]
        duration_s = (
            60.0 if stall else last.time_from_start.sec + 1e-9 * last.time_from_start.nanosec
        )
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            if estop and time.monotonic() > end - duration_s / 2:
                gh.abort()
                return FollowJointTrajectory.Result(
                    error_code=FollowJointTrajectory.Result.PATH_TOLERANCE_VIOLATED,
                    error_string="safety stopped the motion: e-stop latched",
                )
            if gh.is_cancel_requested:
                with self._lock:
                    self.canceled += 1
                gh.canceled()
                return FollowJointTrajectory.Result()
            time.sleep(0.01)
        with self._lock:
            self.q = np.array(last.positions)
        self.publish_state()  # before the result: the next chunk starts from here
        gh.succeed()
        return FollowJointTrajectory.Result(error_code=FollowJointTrajectory.Result.SUCCESSFUL)


class RecordingVerifier:
    """Test double of sim_arm_node's ``task_success``: says no, and notes how many chunks
    the arm had received when it was asked."""

    def __init__(self, node: Node, name: str, arm: FakeArm) -> None:
        self.arm = arm
        self.asked_after_goals: list[int] = []
        node.create_service(Trigger, name, self._on_request)

    def _on_request(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        self.asked_after_goals.append(len(self.arm.goals))
        resp.success, resp.message = False, "predicate not met"
        return resp


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    session = RosSession(fresh_domain_id())
    node = session.add(
        ExecutorNode(
            namespace=NS,
            context=session.context,
            parameter_overrides=[
                Parameter("idm_mode", value="closed_loop"),
                Parameter("output_mode", value="action"),
                Parameter("controller_name", value="fake_arm"),
                Parameter("max_image_age_s", value=2.0),
                Parameter("settle_timeout_s", value=0.5),
                Parameter("video_dir", value=str(tmp_path_factory.mktemp("videos"))),
                Parameter("success_service", value="fake_verifier/task_success"),
            ],
        )
    )
    probe = session.node("probe", NS)
    arm = FakeArm(probe, "fake_arm")
    verifier = RecordingVerifier(probe, "fake_verifier/task_success", arm)
    image_pub = probe.create_publisher(Image, "image_raw", sensor_qos())
    rng = np.random.default_rng(0)

    def camera() -> None:
        arm.publish_state()
        msg = fill_image_msg(Image(), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), "rgb8")
        msg.header.stamp = node.get_clock().now().to_msg()
        image_pub.publish(msg)

    probe.create_timer(0.1, camera)
    client = SafeActionClient(probe, ExecuteTask, "execute_task")
    assert client.wait_for_server(timeout_sec=20)
    wait_for(lambda: node.joint_positions_rad() is not None, 10, "joint state")
    yield node, arm, verifier, client
    node.shutdown_worker()
    session.close()


def test_each_imagined_frame_becomes_one_short_trajectory(graph) -> None:
    node, arm, verifier, client = graph
    assert node.runner.config.idm_mode == "closed_loop"
    goals_before, asked_before = len(arm.goals), len(verifier.asked_after_goals)
    feedback: list = []
    goal = ExecuteTask.Goal(task_prompt="put the red cube in the bowl", max_replans=1)
    handle = result_of(
        client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback)),
        10,
    )
    res = result_of(handle.get_result_async(), 60)
    assert res.status == GoalStatus.STATUS_ABORTED  # the verifier says no twice
    assert res.result.replans_used == 1
    assert res.result.message.startswith("task predicate not met after 1 replan(s)")
    sent = arm.goals[goals_before:]
    q_at = arm.q_at_goal[goals_before:]
    per_segment = NUM_FRAMES - 1
    # (T-1) chunks per segment; between the segments the move home (replan_from_home)
    assert len(sent) == 2 * per_segment + 1
    home_move = sent[per_segment]
    home = RobotDescription.from_yaml(default_robot_path()).home_rad
    np.testing.assert_allclose(home_move.points[-1].positions[:5], home[:5], atol=1e-9)
    gripper_then = q_at[per_segment][5]
    assert all(abs(pt.positions[5] - gripper_then) < 1e-9 for pt in home_move.points)
    chunks = sent[:per_segment] + sent[per_segment + 1 :]
    assert all(len(t.points) == CHUNK for t in chunks)
    assert all(list(t.joint_names) == NAMES for t in sent)
    assert sent[0].points[0].time_from_start.nanosec == 100_000_000  # one control period
    # every chunk starts next to where the arm measured it was (tiny IDM: <= 0.02 rad/step)
    for traj, q in zip(chunks, q_at[:per_segment] + q_at[per_segment + 1 :], strict=True):
        assert np.max(np.abs(np.array(traj.points[0].positions) - q)) <= 0.02 + 1e-6
    # verified after every chunk (verify_each_chunk), none after the move home
    first = list(range(goals_before + 1, goals_before + per_segment + 1))
    second = [n + per_segment + 1 for n in first]
    assert verifier.asked_after_goals[asked_before:] == first + second
    # the result: the last segment's chunks back to back
    points = res.result.trajectory.points
    assert len(points) == per_segment * CHUNK
    times = [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in points]
    assert np.all(np.diff(times) > 0)
    np.testing.assert_allclose(points[-1].positions, sent[-1].points[-1].positions)
    # progress moves across the chunks of a segment
    executing = [f.progress for f in feedback if f.phase == ExecuteTask.Feedback.PHASE_EXECUTING]
    for k in range(1, per_segment + 1):  # segment 0 of 2: (0.5 + 0.45 * k / (T-1)) / 2
        assert min(abs(p - (0.5 + 0.45 * k / per_segment) / 2) for p in executing) < 1e-4
    assert Path(res.result.imagined_video_path).name.endswith("_1.mp4")
    assert Path(res.result.executed_video_path).is_file()


def test_cancel_mid_way_stops_sending_chunks(graph) -> None:
    _, arm, _, client = graph
    before, canceled_before = len(arm.goals), arm.canceled
    arm.stall_from = before + 1  # the second chunk is in flight until canceled
    try:
        handle = result_of(
            client.send_goal_async(ExecuteTask.Goal(task_prompt="stack the cubes", max_replans=0)),
            10,
        )
        wait_for(lambda: len(arm.goals) >= before + 2, 30, "the second chunk")
        result_of(handle.cancel_goal_async(), 10)
        res = result_of(handle.get_result_async(), 30)
    finally:
        arm.stall_from = None
    assert res.status == GoalStatus.STATUS_CANCELED
    assert "canceled" in res.result.message
    # the result names what was sent before the cancel: the first two chunks
    assert len(res.result.trajectory.points) == 2 * CHUNK
    wait_for(lambda: arm.canceled == canceled_before + 1, 5, "the arm's goal canceled")
    received = len(arm.goals)
    time.sleep(1.0)  # longer than two chunks: none may follow
    assert len(arm.goals) == received
    assert received - before < NUM_FRAMES - 1


def test_an_e_stop_mid_segment_aborts_and_the_result_holds_what_was_sent(graph) -> None:
    _, arm, _, client = graph
    before = len(arm.goals)
    arm.estop_from = before + 1  # the second chunk is stopped half-way
    try:
        handle = result_of(
            client.send_goal_async(ExecuteTask.Goal(task_prompt="stack the cubes", max_replans=0)),
            10,
        )
        res = result_of(handle.get_result_async(), 30)
    finally:
        arm.estop_from = None
    assert res.status == GoalStatus.STATUS_ABORTED
    assert "safety stopped the motion: e-stop latched" in res.result.message
    sent = arm.goals[before:]
    assert len(sent) == 2  # nothing after the stopped chunk
    # the result names both chunks, the stopped one last, on one clock
    points = res.result.trajectory.points
    assert len(points) == 2 * CHUNK
    np.testing.assert_allclose(points[0].positions, sent[0].points[0].positions)
    np.testing.assert_allclose(points[-1].positions, sent[1].points[-1].positions)
    times = [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in points]
    assert np.all(np.diff(times) > 0)


def test_bad_idm_mode_fails_at_startup_naming_it(graph, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"idm_mode must be one of .*got 'closed-loop'"):
        ExecutorNode(
            namespace="/bad_idm_mode",
            context=graph[0].context,
            parameter_overrides=[Parameter("idm_mode", value="closed-loop")],
        )
    log = tmp_path / "executor_node.log"
    proc = node_process(
        "executor_node", fresh_domain_id(), "/bad_idm_mode", {"idm_mode": "blind"}, log
    )
    try:
        assert proc.wait(timeout=120) == 2
    finally:
        stop_process(proc)
    assert "got 'blind'" in log.read_text()


def test_retime_profile_parameter(graph) -> None:
    assert graph[0].runner.config.retime_profile == "per_interval"  # the runner's default
    with pytest.raises(ValueError, match=r"retime_profile must be one of .*got 'spline'"):
        ExecutorNode(
            namespace="/bad_retime_profile",
            context=graph[0].context,
            parameter_overrides=[Parameter("retime_profile", value="spline")],
        )


def test_candidate_parameters(graph) -> None:
    assert graph[0].runner.config.num_candidates == 1  # the runner's default: no critic
    assert graph[0].runner.critic is None
    with pytest.raises(ValueError, match=r"candidate_judge must be one of .*got 'oracle'"):
        ExecutorNode(
            namespace="/bad_candidate_judge",
            context=graph[0].context,
            parameter_overrides=[Parameter("candidate_judge", value="oracle")],
        )
    with pytest.raises(ValueError, match=r"'learned' needs critic_path"):
        ExecutorNode(
            namespace="/learned_without_critic",
            context=graph[0].context,
            parameter_overrides=[
                Parameter("candidate_judge", value="learned"),
                Parameter("num_candidates", value=2),
            ],
        )
    with pytest.raises(FileNotFoundError, match=r"nowhere"):  # fails at startup, named
        ExecutorNode(
            namespace="/learned_critic_missing",
            context=graph[0].context,
            parameter_overrides=[
                Parameter("candidate_judge", value="learned"),
                Parameter("critic_path", value="/nowhere/critic"),
                Parameter("num_candidates", value=2),
            ],
        )
    with pytest.raises(ValueError, match=r"num_candidates must be >= 1, got 0"):
        ExecutorNode(
            namespace="/bad_num_candidates",
            context=graph[0].context,
            parameter_overrides=[Parameter("num_candidates", value=0)],
        )


def test_num_candidates_imagines_several_and_tracks_one(graph) -> None:
    node, arm, _, client = graph
    model = node.runner.video_model
    seeds: list[int] = []

    def counting(image_rgb, prompt, seed):  # the node's own model, seeds noted
        seeds.append(seed)
        return model(image_rgb, prompt, seed)

    node.runner.video_model = counting
    node.set_parameters([Parameter("num_candidates", value=3)])  # read on the next goal
    try:
        before = len(arm.goals)
        goal = ExecuteTask.Goal(task_prompt="put the red cube in the bowl", max_replans=0)
        res = result_of(result_of(client.send_goal_async(goal), 10).get_result_async(), 60)
        assert res.result.message.startswith("task predicate not met after 0 replan(s)")
        assert node.runner.config.num_candidates == 3
        assert node.runner.critic is not None
        assert len(seeds) == 3  # three imagined, one segment
        assert len(set(seeds)) == 3
        assert len(arm.goals) - before == NUM_FRAMES - 1  # one video tracked
    finally:
        node.set_parameters([Parameter("num_candidates", value=1)])
        node.runner.video_model = model
