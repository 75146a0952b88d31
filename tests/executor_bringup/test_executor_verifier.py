"""executor_node with a task verifier (``success_service``) and the executed video.

In-process over real DDS. ``FakeVerifier`` is a test double of sim_arm_node's
``task_success`` service whose answer the test sets; the test publishes camera images
(10 Hz) and joint_states itself, and nobody moves the arm (output_mode topic), so the
verifier's answer alone decides the goal.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from executor_interfaces.action import ExecuteTask
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_helpers import RosSession, SafeActionClient, fresh_domain_id, result_of, wait_for
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger

from executor_bringup.executor_node import ExecutorNode
from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.qos import sensor_qos

pytestmark = pytest.mark.ros
NS = "/executor_verifier_test"
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
VERDICT_NO = "task 'put the red cube in the bowl' (scene seed 11): predicate not met"
VERDICT_YES = "task 'put the red cube in the bowl' (scene seed 11): predicate met"


class FakeVerifier:
    """Test double of sim_arm_node's ``task_success``: answers what the test set."""

    def __init__(self, node: Node, name: str) -> None:
        self.answer = (False, VERDICT_NO)
        self.calls = 0
        self._lock = threading.Lock()
        node.create_service(Trigger, name, self._on_request)

    def _on_request(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self.calls += 1
            resp.success, resp.message = self.answer
        return resp


def _executor(session: RosSession, namespace: str, video_dir: Path, verifier: str) -> ExecutorNode:
    return session.add(
        ExecutorNode(
            namespace=namespace,
            context=session.context,
            parameter_overrides=[
                Parameter("output_mode", value="topic"),
                Parameter("max_image_age_s", value=5.0),
                Parameter("settle_timeout_s", value=0.1),
                # so tight that the unmoved arm never "reaches": only the verifier decides
                Parameter("goal_tolerance_rad", value=1e-5),
                Parameter("video_dir", value=str(video_dir)),
                Parameter("success_service", value=verifier),
            ],
        )
    )


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    session = RosSession(fresh_domain_id())
    node = _executor(session, NS, tmp_path_factory.mktemp("videos"), "fake_verifier/task_success")
    probe = session.node("probe", NS)
    verifier = FakeVerifier(probe, "fake_verifier/task_success")
    image_pub = probe.create_publisher(Image, "image_raw", sensor_qos())
    js_pub = probe.create_publisher(JointState, "joint_states", sensor_qos())
    rng = np.random.default_rng(0)

    def camera() -> None:  # a 10 Hz camera, so that frames arrive while the arm "executes"
        rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        msg = fill_image_msg(Image(), rgb, "rgb8")
        msg.header.stamp = node.get_clock().now().to_msg()
        image_pub.publish(msg)
        js_pub.publish(JointState(name=NAMES, position=[0.0] * 6))

    probe.create_timer(0.1, camera)
    client = SafeActionClient(probe, ExecuteTask, "execute_task")
    assert client.wait_for_server(timeout_sec=20)
    wait_for(lambda: node.joint_positions_rad() is not None, 10, "joint state")
    yield node, verifier, client, session
    node.shutdown_worker()
    session.close()


def _run(client: SafeActionClient, max_replans: int) -> object:
    goal = ExecuteTask.Goal(task_prompt="put the red cube in the bowl", max_replans=max_replans)
    handle = result_of(client.send_goal_async(goal), 10)
    assert handle.accepted
    return result_of(handle.get_result_async(), 60)


def test_verifier_no_replans_then_fails_naming_the_predicate(graph) -> None:
    _, verifier, client, _ = graph
    verifier.answer = (False, VERDICT_NO)
    before = verifier.calls
    res = _run(client, max_replans=1)
    assert res.status == GoalStatus.STATUS_ABORTED
    assert res.result.success is False
    assert res.result.replans_used == 1
    # asked after each of the 4 chunks of each segment (verify_each_chunk, the default)
    assert verifier.calls == before + 2 * 4
    message = res.result.message
    assert message.startswith("task predicate not met after 1 replan(s): ")
    assert f"{NS}/fake_verifier/task_success says {VERDICT_NO!r}" in message
    # Nobody moves the arm here: the miss is reported too.
    assert "arm did not reach the last point" in message
    assert res.result.imagined_video_path.endswith("_1.mp4")
    assert res.result.executed_video_path.endswith("_1_executed.mp4")


def test_verifier_yes_succeeds_although_the_arm_missed(graph) -> None:
    _, verifier, client, _ = graph
    verifier.answer = (True, VERDICT_YES)
    res = _run(client, max_replans=2)
    assert res.status == GoalStatus.STATUS_SUCCEEDED
    assert res.result.success is True
    assert res.result.replans_used == 0
    # the first chunk's verdict already says yes: the goal ends there
    assert res.result.message.startswith(f"task done ({VERDICT_YES}): 4 points executed")


def test_executed_video_is_a_readable_mp4_next_to_the_imagined_one(graph) -> None:
    _, verifier, client, _ = graph
    verifier.answer = (True, VERDICT_YES)
    res = _run(client, max_replans=0)
    imagined = Path(res.result.imagined_video_path)
    executed = Path(res.result.executed_video_path)
    assert executed.parent == imagined.parent
    assert executed.name == f"{imagined.stem}_executed.mp4"
    assert not list(executed.parent.glob(".*"))  # no temp file left behind
    capture = cv2.VideoCapture(str(executed))
    try:
        assert capture.isOpened()
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    # The trajectory lasts >= 1.6 s at 10 Hz control and the camera runs at 10 Hz.
    assert len(frames) >= 1
    assert frames[0].shape == (48, 64, 3)


def test_configured_but_missing_verifier_fails_before_moving(graph, tmp_path: Path) -> None:
    _, _, _, session = graph
    namespace = "/executor_no_verifier_test"
    node = _executor(session, namespace, tmp_path, "nobody/task_success")
    try:
        probe = session.node("probe_missing", namespace)
        image_pub = probe.create_publisher(Image, "image_raw", sensor_qos())
        client = SafeActionClient(probe, ExecuteTask, "execute_task")
        assert client.wait_for_server(timeout_sec=20)
        rgb = np.zeros((48, 64, 3), dtype=np.uint8)
        msg = fill_image_msg(Image(), rgb, "rgb8")
        msg.header.stamp = node.get_clock().now().to_msg()
        image_pub.publish(msg)
        res = _run(client, max_replans=0)
        assert res.status == GoalStatus.STATUS_ABORTED
        assert res.result.message == (
            f"task verifier service '{namespace}/nobody/task_success' "
            "(parameter success_service) is not available after 5.0 s"
        )
        assert res.result.imagined_video_path == ""  # nothing was imagined or sent
        assert res.result.trajectory.points == []
    finally:
        node.shutdown_worker()
