"""executor_node over real DDS, in-process: image validation, staleness, topic output.

The test publishes camera images and joint_states itself and listens where the safety
node would (``safety/joint_trajectory``, output_mode topic), so each rule is observed
directly.
"""

from __future__ import annotations

import array
import re
import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from builtin_interfaces.msg import Time
from executor_interfaces.action import ExecuteTask
from rclpy.parameter import Parameter
from ros_helpers import RosSession, SafeActionClient, fresh_domain_id, result_of, wait_for
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from executor_bringup.executor_node import ExecutorNode
from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.qos import command_qos, sensor_qos

pytestmark = pytest.mark.ros
NS = "/executor_test"
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    session = RosSession(fresh_domain_id())
    node = session.add(
        ExecutorNode(
            namespace=NS,
            context=session.context,
            parameter_overrides=[
                Parameter("output_mode", value="topic"),
                # the open-loop path: one trajectory per segment (closed loop has its tests)
                Parameter("idm_mode", value="open_loop"),
                Parameter("max_image_age_s", value=1.0),
                Parameter("settle_timeout_s", value=0.5),
                Parameter("video_dir", value=str(tmp_path_factory.mktemp("videos"))),
            ],
        )
    )
    probe = session.node("probe", NS)
    sent: list = []
    probe.create_subscription(
        JointTrajectoryMsg, "safety/joint_trajectory", sent.append, command_qos()
    )
    pubs = {
        "image": probe.create_publisher(Image, "image_raw", sensor_qos()),
        "js": probe.create_publisher(JointState, "joint_states", sensor_qos()),
    }
    client = SafeActionClient(probe, ExecuteTask, "execute_task")
    assert client.wait_for_server(timeout_sec=20)
    wait_for(lambda: probe.count_subscribers("image_raw") == 1, 10, "image subscription")
    yield node, probe, pubs, client, sent
    node.shutdown_worker()
    session.close()


def _image(stamp: Time) -> Image:
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    msg = fill_image_msg(Image(), rgb, "rgb8")
    msg.header.stamp = stamp
    return msg


def _run_goal(client: SafeActionClient, prompt: str = "put the red cube in the bowl"):
    handle = result_of(client.send_goal_async(ExecuteTask.Goal(task_prompt=prompt)), 10)
    assert handle.accepted
    return result_of(handle.get_result_async(), 30)


def test_malformed_image_is_rejected_and_never_used(graph) -> None:
    node, _, pubs, client, _ = graph
    bad = _image(node.get_clock().now().to_msg())
    bad.data = array.array("B", bytes(100))  # step/height say 9216 bytes
    pubs["image"].publish(bad)
    wait_for(lambda: node.images_rejected >= 1, 5, "the rejection")
    assert "data has 100 bytes, expected step 192 x height 48 = 9216" in node.last_image_error
    res = _run_goal(client)
    assert res.status == GoalStatus.STATUS_ABORTED
    assert "no valid image" in res.result.message
    assert "data has 100 bytes" in res.result.message


def test_stale_image_aborts_naming_the_age(graph) -> None:
    node, _, pubs, client, _ = graph
    now_ns = node.get_clock().now().nanoseconds
    old = Time(sec=int(now_ns // 1_000_000_000) - 5, nanosec=int(now_ns % 1_000_000_000))
    pubs["image"].publish(_image(old))
    wait_for(lambda: node.sensors.image is not None, 5, "the image")
    res = _run_goal(client)
    assert res.status == GoalStatus.STATUS_ABORTED
    assert "stale image: age 5." in res.result.message
    assert "> max_image_age_s 1.000" in res.result.message


def test_image_stamped_in_the_future_aborts_naming_the_skew(graph) -> None:
    """A frozen frame with a stamp 100 s ahead is never "fresh"; a small skew is tolerated."""
    node, _, pubs, client, _ = graph
    pubs["js"].publish(JointState(name=NAMES, position=[0.0] * 6))
    now_ns = node.get_clock().now().nanoseconds
    ahead = Time(sec=int(now_ns // 1_000_000_000) + 100, nanosec=int(now_ns % 1_000_000_000))
    pubs["image"].publish(_image(ahead))
    wait_for(lambda: node.sensors.image_stamp_s > now_ns * 1e-9 + 50, 5, "the image")
    res = _run_goal(client)
    assert res.status == GoalStatus.STATUS_ABORTED
    found = re.search(
        r"image stamped ([\d.]+) s in the future > max_clock_skew_s 0\.100", res.result.message
    )
    assert found, res.result.message
    assert 99.0 < float(found[1]) <= 100.0  # 100 s ahead, less the time the goal took
    # within the allowance (a camera clock 50 ms ahead) the frame is used
    node.set_parameters([Parameter("goal_tolerance_rad", value=1e-5)])
    count = node.sensors.image_count
    ahead_ns = node.get_clock().now().nanoseconds + 50_000_000
    pubs["image"].publish(_image(Time(sec=ahead_ns // 10**9, nanosec=ahead_ns % 10**9)))
    wait_for(lambda: node.sensors.image_count > count, 5, "the image")
    res = _run_goal(client)
    assert "arm did not reach the last point" in res.result.message  # past the image check


def test_fresh_image_gives_trajectory_on_topic(graph) -> None:
    node, _, pubs, client, sent = graph
    node.set_parameters([Parameter("goal_tolerance_rad", value=1e-5)])
    pubs["image"].publish(_image(node.get_clock().now().to_msg()))
    pubs["js"].publish(JointState(name=NAMES, position=[0.0] * 6))
    wait_for(lambda: node.joint_positions_rad() is not None, 5, "joint state")
    before = len(sent)
    res = _run_goal(client)
    # Nobody moves the arm here, so verification must fail and say by how much.
    assert res.status == GoalStatus.STATUS_ABORTED
    assert "arm did not reach the last point" in res.result.message
    assert len(sent) == before + 1
    traj = sent[-1]
    assert list(traj.joint_names) == NAMES
    assert len(traj.points) == 16
    assert traj.points[0].time_from_start.nanosec == 100_000_000  # 10 Hz control
    first = np.array(traj.points[0].positions)
    assert np.all(np.abs(first) <= 0.02 + 1e-6)  # starts next to the measured state
    assert res.result.imagined_video_path.endswith("_0.mp4")


def test_empty_prompt_is_rejected(graph) -> None:
    _, _, _, client, _ = graph
    handle = result_of(client.send_goal_async(ExecuteTask.Goal(task_prompt="  ")), 10)
    assert not handle.accepted


def test_over_long_prompt_is_rejected_naming_its_length(graph, capfd) -> None:
    node, _, _, client, _ = graph
    assert node.get_parameter("max_prompt_chars").value == 1000
    long_prompt = "put the red cube in the bowl " * 3500  # 101500 characters
    handle = result_of(client.send_goal_async(ExecuteTask.Goal(task_prompt=long_prompt)), 10)
    assert not handle.accepted
    logged = capfd.readouterr().err
    assert "task_prompt has 101500 characters, more than max_prompt_chars 1000" in logged
    assert len(logged) < 2000  # the prompt itself is not logged
    # at the limit it is accepted
    handle = result_of(client.send_goal_async(ExecuteTask.Goal(task_prompt="p" * 1000)), 10)
    assert handle.accepted
    result_of(handle.get_result_async(), 30)


@pytest.mark.parametrize(
    ("timeout_s", "max_replans", "named"),
    [
        (float("nan"), -1, "timeout_s must be finite and >= 0"),
        (-1.0, -1, "timeout_s must be finite and >= 0"),
        (float("inf"), -1, "timeout_s must be finite and >= 0"),
        (0.0, -2, "max_replans must be >= -1"),
    ],
)
def test_bad_goal_budget_is_rejected_not_read_as_the_default(
    graph, capfd, timeout_s: float, max_replans: int, named: str
) -> None:
    _, _, _, client, _ = graph
    goal = ExecuteTask.Goal(task_prompt="go", timeout_s=timeout_s, max_replans=max_replans)
    handle = result_of(client.send_goal_async(goal), 10)
    assert not handle.accepted
    assert named in capfd.readouterr().err


def test_replans_until_max_replans(graph) -> None:
    node, probe, pubs, client, sent = graph
    node.set_parameters(
        [
            Parameter("goal_tolerance_rad", value=1e-5),
            Parameter("max_image_age_s", value=2.0),
            # no arm here: the move home (closed-loop tests) is off
            Parameter("replan_from_home", value=False),
        ]
    )
    pubs["js"].publish(JointState(name=NAMES, position=[0.0] * 6))
    # a 10 Hz camera: each re-imagining waits for a frame taken after the last motion
    camera = probe.create_timer(
        0.1, lambda: pubs["image"].publish(_image(node.get_clock().now().to_msg()))
    )
    before = len(sent)
    goal = ExecuteTask.Goal(task_prompt="stack the cubes", max_replans=2)
    try:
        handle = result_of(client.send_goal_async(goal), 10)
        res = result_of(handle.get_result_async(), 30)
    finally:
        probe.destroy_timer(camera)
    assert res.status == GoalStatus.STATUS_ABORTED
    assert res.result.replans_used == 2
    assert "after 2 replan(s)" in res.result.message
    assert len(sent) == before + 3  # one trajectory per (re)plan
    assert res.result.imagined_video_path.endswith("_2.mp4")


def test_goal_right_after_startup_waits_for_the_first_image(tmp_path) -> None:
    session = RosSession(fresh_domain_id())
    try:
        node = session.add(
            ExecutorNode(
                namespace="/first_image",
                context=session.context,
                parameter_overrides=[
                    Parameter("output_mode", value="topic"),
                    Parameter("idm_mode", value="open_loop"),
                    # so tight that the unmoved arm never "reaches" the last point
                    Parameter("goal_tolerance_rad", value=1e-5),
                    Parameter("max_image_age_s", value=3.0),
                    Parameter("settle_timeout_s", value=0.1),
                    Parameter("video_dir", value=str(tmp_path)),
                ],
            )
        )
        probe = session.node("probe", "/first_image")
        image_pub = probe.create_publisher(Image, "image_raw", sensor_qos())
        js_pub = probe.create_publisher(JointState, "joint_states", sensor_qos())
        client = SafeActionClient(probe, ExecuteTask, "execute_task")
        assert client.wait_for_server(timeout_sec=20)
        wait_for(lambda: probe.count_subscribers("image_raw") == 1, 10, "image subscription")
        handle = result_of(client.send_goal_async(ExecuteTask.Goal(task_prompt="wait")), 10)
        time.sleep(0.5)  # the goal is waiting for a first frame now
        image_pub.publish(_image(node.get_clock().now().to_msg()))
        js_pub.publish(JointState(name=NAMES, position=[0.0] * 6))
        res = result_of(handle.get_result_async(), 30)
        # It got past the image (verification fails: nobody moves the arm here).
        assert "no valid image" not in res.result.message
        assert "arm did not reach the last point" in res.result.message
    finally:
        node.shutdown_worker()
        session.close()


def test_the_grasp_gate_parameter_reaches_the_goal_runner(graph, tmp_path) -> None:
    node = graph[0]
    assert node.runner.grasp_gate is None  # 0.0 by default: no gate
    session = RosSession(fresh_domain_id())
    try:
        for height, error in ((0.03, None), (-0.01, "max_close_height_m must be > 0, got -0.01")):
            overrides = [
                Parameter("output_mode", value="topic"),
                Parameter("video_dir", value=str(tmp_path)),
                Parameter("grasp_gate_max_height_m", value=height),
            ]
            if error:
                with pytest.raises(ValueError, match=re.escape(error)):
                    ExecutorNode(
                        namespace="/gate", context=session.context, parameter_overrides=overrides
                    )
                continue
            gated = session.add(
                ExecutorNode(
                    namespace="/gate", context=session.context, parameter_overrides=overrides
                )
            )
            gate = gated.runner.grasp_gate
            assert gate is not None
            assert gate.config.max_close_height_m == height
            assert gate.joint_names == tuple(NAMES)
            # the SO-101's home pose holds the gripper frame ~13 cm up: closings there wait
            assert gate.effector_height_m(gated.robot.home_rad) > height
            gated.shutdown_worker()
    finally:
        session.close()
