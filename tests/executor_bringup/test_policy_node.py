"""policy_node over real DDS: a tiny random LeRobot ACT drives the simulated arm.

sim_arm_node (MuJoCo SO-101, autostart, its ``task_success`` verifier) <- safety_node
(action proxy) <- policy_node (the tiny random ACT of ``visuomotor_policy.testing``, saved
to a temporary folder as LeRobot's trainer saves one), one process each. This test process
plays the operator: heartbeat, goals, cancel. The random policy cannot do the task, so a
goal runs chunk after chunk until its timeout or a cancel.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from executor_interfaces.action import ExecuteTask
from rclpy.lifecycle import TransitionCallbackReturn
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
from sensor_msgs.msg import JointState
from std_msgs.msg import Empty

from calibration.camera_info_io import CameraInfoData, save_camera_info
from calibration.rectify import Rectifier
from executor_bringup.policy_node import PolicyNode
from executor_bringup.qos import command_qos, sensor_qos
from executor_core.goal_runner import GoalAborted
from executor_core.robot_description import RobotDescription, default_robot_path
from visuomotor_policy.testing import save_tiny_random_act

pytestmark = pytest.mark.ros
NS = "/policy_node_test"
PROMPT = "put the red cube in the bowl"
ROBOT = RobotDescription.from_yaml(default_robot_path())
CHUNK = 4  # the tiny ACT's n_action_steps


class Operator:
    def __init__(self, session: RosSession) -> None:
        self.node = session.node("operator", NS)
        self.q_log: list[tuple[float, np.ndarray]] = []
        self.node.create_subscription(JointState, "joint_states", self._on_js, sensor_qos())
        self._hb = self.node.create_publisher(Empty, "heartbeat", command_qos())
        self.node.create_timer(0.1, lambda: self._hb.publish(Empty()))
        self.client = SafeActionClient(self.node, ExecuteTask, "execute_task")

    def _on_js(self, msg: JointState) -> None:
        self.q_log.append((time.monotonic(), np.array(msg.position)))

    def send(self, timeout_s: float, feedback: list) -> object:
        goal = ExecuteTask.Goal(task_prompt=PROMPT, timeout_s=timeout_s, max_replans=-1)
        handle = result_of(self.client.send_goal_async(goal, feedback_callback=feedback.append), 10)
        assert handle.accepted
        return handle

    def motion_since(self, t0: float) -> float:
        qs = [q for t, q in self.q_log if t >= t0]
        return float(np.max(np.abs(np.array(qs) - qs[0]))) if len(qs) > 1 else 0.0


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    logs = tmp_path_factory.mktemp("policy_graph")
    policy_dir = save_tiny_random_act(logs / "pretrained_model")
    domain = fresh_domain_id()
    procs = [
        node_process(
            "sim_arm_node",
            domain,
            NS,
            {"autostart": True, "camera_rate_hz": 10.0, "goal_time_tolerance_s": 3.0},
            logs / "sim.log",
        ),
        node_process("safety_node", domain, NS, {"heartbeat_timeout_s": 5.0}, logs / "safety.log"),
        node_process(
            "policy_node",
            domain,
            NS,
            {
                "autostart": True,
                "policy_path": str(policy_dir),
                "success_service": "task_success",
                "max_image_age_s": 3.0,
                "record_dir": str(logs / "recordings"),
                "video_dir": str(logs / "videos"),
            },
            logs / "policy.log",
        ),
    ]
    session = RosSession(domain)
    op = Operator(session)
    try:
        wait_for(
            lambda: op.client.server_is_ready() and len(op.q_log) > 0,
            60,
            "policy_node's action server and joint_states",
        )
        yield op, logs
    finally:
        session.close()
        for proc in procs:
            stop_process(proc)
        for name in ("sim", "safety", "policy"):
            sys.stderr.write((logs / f"{name}.log").read_text()[-3000:])


def test_a_goal_runs_policy_chunks_until_its_timeout(graph) -> None:
    op, logs = graph
    feedback: list = []
    t0 = time.monotonic()
    handle = op.send(timeout_s=6.0, feedback=feedback)
    res = result_of(handle.get_result_async(), 30)
    assert res.status == GoalStatus.STATUS_ABORTED, res.result.message
    assert res.result.message == "goal timeout of 6 s exceeded"
    points = res.result.trajectory.points
    assert len(points) >= CHUNK  # at least one chunk of the policy went to the arm
    assert list(res.result.trajectory.joint_names) == list(ROBOT.joint_names)
    # the tiny policy's actions stay near home (its action statistics)
    last = np.array(points[-1].positions)
    assert np.max(np.abs(last - ROBOT.home_rad)) < 0.5
    phases = {f.feedback.phase for f in feedback}
    assert {"executing", "verifying"} <= phases  # the verifier was asked after a chunk
    progress = [f.feedback.progress for f in feedback]
    assert progress == sorted(progress)
    assert op.motion_since(t0) > 0.005  # the simulated joints really moved
    assert res.result.recording_path.startswith(str(logs / "recordings"))
    # the camera while the policy acted: a readable mp4 of its frames
    executed = Path(res.result.executed_video_path)
    assert executed.parent == logs / "videos"
    assert executed.name.endswith("_executed.mp4")
    assert res.result.imagined_video_path == ""  # a policy imagines nothing
    assert not list(executed.parent.glob(".*"))  # no temp file left behind
    capture = cv2.VideoCapture(str(executed))
    try:
        assert capture.isOpened()
        count = 0
        while capture.read()[0]:
            count += 1
    finally:
        capture.release()
    assert count >= 10, count  # camera at 10 Hz; leave room for a loaded machine


def test_cancel_ends_the_goal_and_the_arm_holds(graph) -> None:
    op, _ = graph
    feedback: list = []
    handle = op.send(timeout_s=60.0, feedback=feedback)
    wait_for(lambda: any(f.feedback.phase == "verifying" for f in feedback), 20, "a chunk")
    result_of(handle.cancel_goal_async(), 5)
    res = result_of(handle.get_result_async(), 20)
    assert res.status == GoalStatus.STATUS_CANCELED, res.result.message
    assert "hold" in res.result.message
    time.sleep(0.5)  # let the arm settle at the hold point
    t_hold = time.monotonic()
    time.sleep(0.8)
    assert op.motion_since(t_hold) < 0.005


def test_lifecycle_in_process(graph, tmp_path: Path) -> None:
    """Configure loads the policy (a bad path fails the transition, naming it); goals are
    accepted only while active; a graph without a camera aborts the goal naming it."""
    _, logs = graph
    session = RosSession(fresh_domain_id())
    try:
        bad = session.add(
            PolicyNode(
                namespace="/lifecycle_bad",
                context=session.context,
                parameter_overrides=[Parameter("policy_path", value=str(tmp_path / "nothing"))],
            )
        )
        assert bad.trigger_configure() == TransitionCallbackReturn.FAILURE
        node = session.add(
            PolicyNode(
                namespace="/lifecycle_test",
                context=session.context,
                parameter_overrides=[
                    Parameter("policy_path", value=str(logs / "pretrained_model")),
                    Parameter("max_image_age_s", value=0.5),
                    Parameter("record_dir", value=""),
                ],
            )
        )
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        client = SafeActionClient(
            session.node("client", "/lifecycle_test"), ExecuteTask, "execute_task"
        )
        wait_for(client.server_is_ready, 10, "the configured node's action server")
        goal = ExecuteTask.Goal(task_prompt=PROMPT, timeout_s=5.0)
        assert not result_of(client.send_goal_async(goal), 10).accepted  # configured, inactive
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        handle = result_of(client.send_goal_async(goal), 10)
        assert handle.accepted
        res = result_of(handle.get_result_async(), 20)
        assert res.status == GoalStatus.STATUS_ABORTED
        assert res.result.message == "no valid image received on image_raw yet"
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert not result_of(client.send_goal_async(goal), 10).accepted  # inactive again
        inputs = ("image_raw", "joint_states")
        assert sum(s.topic_name.endswith(inputs) for s in node.subscriptions) == 2
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        # the camera and joint-state subscriptions, the hold publisher, the action client
        # and the verifier went with it (executor_bringup.arm_wiring.ConnectedArm.destroy)
        assert not any(s.topic_name.endswith(inputs) for s in node.subscriptions)
        assert not any(p.topic_name.endswith("joint_trajectory") for p in node.publishers)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS  # reconfigurable
        assert sum(s.topic_name.endswith(inputs) for s in node.subscriptions) == 2
        node.shutdown_worker()
    finally:
        session.close()


def test_rectify_undistorts_what_the_policy_sees(graph, tmp_path: Path) -> None:
    """``rectify`` with ``camera_info_path`` (as executor_node): the frame the policy gets is
    the rectified one; a frame of another size aborts the goal naming why; ``rectify``
    without a calibration fails the configure transition."""
    _, logs = graph
    camera = CameraInfoData(
        image_width_px=64,
        image_height_px=48,
        camera_name="barrel",
        camera_matrix=np.array([[50.0, 0.0, 32.0], [0.0, 50.0, 24.0], [0.0, 0.0, 1.0]]),
        distortion_model="plumb_bob",
        distortion_coefficients=np.array([-0.3, 0.09, 0.0, 0.0, 0.0]),
        rectification_matrix=np.eye(3),
        projection_matrix=np.array([[50.0, 0.0, 32.0, 0.0], [0.0, 50.0, 24.0, 0.0], [0, 0, 1, 0]]),
    )
    path = save_camera_info(camera, tmp_path / "barrel.yaml")
    policy = Parameter("policy_path", value=str(logs / "pretrained_model"))
    session = RosSession(fresh_domain_id())
    try:
        missing = PolicyNode(
            namespace="/rectify_missing",
            context=session.context,
            parameter_overrides=[policy, Parameter("rectify", value=True)],
        )
        assert missing.trigger_configure() == TransitionCallbackReturn.FAILURE
        node = PolicyNode(
            namespace="/rectify_test",
            context=session.context,
            parameter_overrides=[
                policy,
                Parameter("rectify", value=True),
                Parameter("camera_info_path", value=str(path)),
                Parameter("record_dir", value=""),
            ],
        )
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, ::8] = 255  # vertical lines: bent by the distortion, moved by rectification
        np.testing.assert_array_equal(node.arm.model_input(frame), Rectifier(camera)(frame))
        assert not np.array_equal(node.arm.model_input(frame), frame)
        with pytest.raises(GoalAborted, match="cannot rectify image_raw"):
            node.arm.model_input(np.zeros((32, 32, 3), np.uint8))
        node.shutdown_worker()
    finally:
        session.close()
