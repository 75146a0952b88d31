"""safety_node over real DDS (topic interface): forward, reject, dead-man, e-stop latch.

The test plays the arm's side itself: it publishes joint_states and listens on the
controller's command topic, so it sees exactly what would reach the arm.
"""

from __future__ import annotations

import time

import pytest
from executor_interfaces.msg import SafetyStatus
from rclpy.parameter import Parameter
from ros_helpers import RosSession, fresh_domain_id, result_of, wait_for
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Empty
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from trajectory_msgs.msg import JointTrajectoryPoint

from executor_bringup.qos import command_qos, sensor_qos, status_qos
from executor_bringup.safety_node import SafetyNode
from executor_bringup.trajectory_conversion import s_to_duration

pytestmark = pytest.mark.ros
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
NS = "/safety_test"
# Long enough that a loaded CI runner stalling this process for seconds does not read as a
# dead operator in the tests that are about something else.
HEARTBEAT_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def graph():
    session = RosSession(fresh_domain_id())
    safety = session.add(
        SafetyNode(
            namespace=NS,
            context=session.context,
            parameter_overrides=[
                Parameter("interface", value="topic"),
                Parameter("heartbeat_timeout_s", value=HEARTBEAT_TIMEOUT_S),
            ],
        )
    )
    probe = session.node("probe", NS)
    seen: dict[str, list] = {"forwarded": [], "status": []}
    probe.create_subscription(
        JointTrajectoryMsg,
        "arm_controller/joint_trajectory",
        seen["forwarded"].append,
        command_qos(),
    )
    probe.create_subscription(SafetyStatus, "safety_status", seen["status"].append, status_qos())
    js_pub = probe.create_publisher(JointState, "joint_states", sensor_qos())
    beat = {"on": True}
    hb_pub = probe.create_publisher(Empty, "heartbeat", command_qos())

    def tick() -> None:
        js_pub.publish(JointState(name=NAMES, position=[0.0] * 6))
        if beat["on"]:
            hb_pub.publish(Empty())

    probe.create_timer(0.05, tick)
    pubs = {
        "traj": probe.create_publisher(
            JointTrajectoryMsg, "safety/joint_trajectory", command_qos()
        ),
        "estop": probe.create_publisher(Bool, "e_stop", command_qos()),
        "reset": probe.create_client(Trigger, "reset_e_stop"),
    }
    wait_for(lambda: seen["status"] and seen["status"][-1].heartbeat_ok, 20, "heartbeat ok")
    wait_for(lambda: safety.count_publishers("safety/joint_trajectory") == 1, 10, "discovery")
    yield safety, seen, pubs, beat
    session.close()


def _traj(step_rad: float, n: int = 5, dt_s: float = 0.1, joint: int = 0) -> JointTrajectoryMsg:
    msg = JointTrajectoryMsg(joint_names=NAMES)
    for i in range(n):
        q = [0.0] * 6
        q[joint] = step_rad * (i + 1)
        msg.points.append(
            JointTrajectoryPoint(positions=q, time_from_start=s_to_duration(dt_s * (i + 1)))
        )
    return msg


def _forwarded_after(seen: dict, count: int, timeout_s: float = 3.0) -> list:
    wait_for(lambda: len(seen["forwarded"]) > count, timeout_s, "a forwarded trajectory")
    return seen["forwarded"][count:]


def test_accepted_trajectory_is_forwarded_unchanged(graph) -> None:
    _, seen, pubs, _ = graph
    before = len(seen["forwarded"])
    pubs["traj"].publish(_traj(0.01))
    out = _forwarded_after(seen, before)[0]
    assert list(out.joint_names) == NAMES
    assert [p.positions[0] for p in out.points] == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])
    assert seen["status"][-1].last_rejection == ""


def test_violation_is_rejected_with_joint_index_value(graph) -> None:
    _, seen, pubs, _ = graph
    before = len(seen["forwarded"])
    bad = _traj(0.01, joint=2)
    bad.points[3].positions[2] = 1.8  # elbow_flex upper limit 1.69
    pubs["traj"].publish(bad)
    wait_for(lambda: "elbow_flex" in seen["status"][-1].last_rejection, 3, "rejection status")
    assert "point 3: position 1.8 rad above upper limit 1.69" in seen["status"][-1].last_rejection
    time.sleep(0.3)
    assert len(seen["forwarded"]) == before  # nothing (not even a clipped copy) reached the arm


def test_stale_heartbeat_stops_motion_and_blocks(graph) -> None:
    _, seen, pubs, beat = graph
    before = len(seen["forwarded"])
    pubs["traj"].publish(_traj(0.002, n=150))  # 15 s of motion, outlasting the timeout
    _forwarded_after(seen, before)
    beat["on"] = False
    try:
        out = _forwarded_after(seen, before + 1, timeout_s=HEARTBEAT_TIMEOUT_S + 3.0)
        assert len(out[0].points) == 0  # the empty trajectory: controller holds
        wait_for(lambda: not seen["status"][-1].heartbeat_ok, 2, "heartbeat_ok false")
        count = len(seen["forwarded"])
        pubs["traj"].publish(_traj(0.01))
        wait_for(lambda: "heartbeat" in seen["status"][-1].last_rejection, 3, "rejection")
        assert len(seen["forwarded"]) == count
    finally:
        beat["on"] = True
    wait_for(lambda: seen["status"][-1].heartbeat_ok, 3, "heartbeat back")


def test_estop_latches_until_reset_service(graph) -> None:
    _, seen, pubs, _ = graph
    before = len(seen["forwarded"])
    pubs["estop"].publish(Bool(data=True))
    wait_for(lambda: seen["status"][-1].estop_latched, 3, "estop latched")
    assert len(seen["forwarded"][before:][0].points) == 0  # hold sent
    pubs["estop"].publish(Bool(data=False))  # false does not clear the latch
    time.sleep(0.2)
    pubs["traj"].publish(_traj(0.01))
    wait_for(lambda: "e-stop latched" in seen["status"][-1].last_rejection, 3, "rejection")
    assert seen["status"][-1].estop_latched
    assert pubs["reset"].wait_for_service(timeout_sec=5)
    response = result_of(pubs["reset"].call_async(Trigger.Request()), 5)
    assert response.success
    assert response.message == "e-stop latch cleared"
    wait_for(lambda: not seen["status"][-1].estop_latched, 3, "latch cleared")
    count = len(seen["forwarded"])
    pubs["traj"].publish(_traj(0.01))
    assert len(_forwarded_after(seen, count)[0].points) == 5


def test_status_is_latched_for_late_joiners(graph) -> None:
    safety, seen, pubs, _ = graph
    pubs["estop"].publish(Bool(data=True))  # a state a late joiner could not have guessed
    wait_for(lambda: seen["status"][-1].estop_latched, 3, "estop latched")
    got: list = []
    # Not destroyed here: destroying an entity while the executor thread waits on it kills
    # that thread (rclpy InvalidHandle); the session's teardown destroys it with the node.
    safety.create_subscription(SafetyStatus, "safety_status", got.append, status_qos())
    try:
        wait_for(lambda: bool(got), 3, "latched status")
        assert got[0].estop_latched is True
    finally:
        assert result_of(pubs["reset"].call_async(Trigger.Request()), 5).success
