"""safety_node over real DDS (topic interface): forward, reject, dead-man, e-stop latch,
a first point at t=0, trajectories stamped in the future, the dead-man's own thread.

The test plays the arm's side itself: it publishes joint_states and listens on the
controller's command topic, so it sees exactly what would reach the arm.
"""

from __future__ import annotations

import time

import pytest
from executor_interfaces.msg import SafetyStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.parameter import Parameter
from rclpy.time import Time
from ros_helpers import RosSession, fresh_domain_id, result_of, wait_for
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Empty
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from trajectory_msgs.msg import JointTrajectoryPoint

from executor_bringup.polled_subscription import stamp_monotonic_s
from executor_bringup.qos import command_qos, sensor_qos, status_qos
from executor_bringup.safety_node import SafetyNode
from executor_bringup.trajectory_conversion import s_to_duration

pytestmark = pytest.mark.ros
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
NS = "/safety_test"
# Long enough that a loaded CI runner stalling this process for seconds does not read as a
# dead operator in the tests that are about something else.
HEARTBEAT_TIMEOUT_S = 5.0
# Beyond the heartbeat timeout, so that a deferred start can outlive a live heartbeat.
MAX_FUTURE_STAMP_S = 8.0


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
                Parameter("max_future_stamp_s", value=MAX_FUTURE_STAMP_S),
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
    pubs["probe"], pubs["session"] = probe, session
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


def test_first_point_at_time_zero_away_from_the_measured_state_is_rejected(graph) -> None:
    _, seen, pubs, _ = graph
    before = len(seen["forwarded"])
    bad = _traj(0.01)
    bad.points[0].time_from_start = s_to_duration(0.0)
    bad.points[0].positions[0] = 0.2  # now, from 0.0: within max_start_jump_rad 0.25
    pubs["traj"].publish(bad)
    wait_for(lambda: "zero_time_start" in seen["status"][-1].last_rejection, 3, "rejection")
    why = seen["status"][-1].last_rejection
    assert "'shoulder_pan' point 0 at time_from_start 0: jump 0.2 rad" in why
    time.sleep(0.3)
    assert len(seen["forwarded"]) == before


def _stamped_in(probe, delay_s: float) -> JointTrajectoryMsg:
    msg = _traj(0.01)
    msg.header.stamp = (probe.get_clock().now() + Duration(seconds=delay_s)).to_msg()
    return msg


def test_stamp_beyond_max_future_stamp_is_rejected(graph) -> None:
    _, seen, pubs, _ = graph
    before = len(seen["forwarded"])
    pubs["traj"].publish(_stamped_in(pubs["probe"], MAX_FUTURE_STAMP_S + 12.0))
    wait_for(lambda: "max_future_stamp_s" in seen["status"][-1].last_rejection, 3, "rejection")
    assert "s in the future, beyond max_future_stamp_s 8.000" in seen["status"][-1].last_rejection
    time.sleep(0.3)
    assert len(seen["forwarded"]) == before


def test_deferred_start_is_stopped_when_the_heartbeat_goes_stale_before_it(graph) -> None:
    """Stamped 7 s ahead (0.5 s of motion): the heartbeat dies after arrival and is stale
    at the start, so the hold must come before the start, although the motion would be
    over by then if it had started on arrival."""
    _, seen, pubs, beat = graph
    # the test before may leave the heartbeat stale for a moment: start from a fresh one
    wait_for(lambda: seen["status"] and seen["status"][-1].heartbeat_ok, 5, "heartbeat ok")
    before = len(seen["forwarded"])
    msg = _stamped_in(pubs["probe"], MAX_FUTURE_STAMP_S - 1.0)
    start_ns = Time.from_msg(msg.header.stamp).nanoseconds
    pubs["traj"].publish(msg)
    assert len(_forwarded_after(seen, before)[0].points) == 5
    beat["on"] = False
    try:
        wait_for(lambda: len(seen["forwarded"]) > before + 1, HEARTBEAT_TIMEOUT_S + 3.0, "hold")
        hold_ns = pubs["probe"].get_clock().now().nanoseconds
        assert len(seen["forwarded"][before + 1].points) == 0  # the hold replaces it
        assert hold_ns < start_ns, "the hold came after the deferred start"
    finally:
        beat["on"] = True
    wait_for(lambda: seen["status"][-1].heartbeat_ok, 3, "heartbeat back")


def test_heartbeat_and_estop_are_handled_off_the_nodes_executor(graph) -> None:
    """A safety node that no executor spins still hears the operator: the heartbeat and
    e_stop run on the dead-man thread, in a mutually exclusive group of their own."""
    _, _, pubs, _ = graph
    session, probe = pubs["session"], pubs["probe"]
    lone = SafetyNode(namespace=NS + "_lone", context=session.context)  # not spun
    try:
        group = lone.deadman.callback_group
        assert isinstance(group, MutuallyExclusiveCallbackGroup)
        subs = {sub.topic_name: sub for sub in lone.deadman.node.subscriptions}
        assert set(subs) == {f"{NS}_lone/heartbeat", f"{NS}_lone/e_stop"}
        assert all(sub.callback_group is group for sub in subs.values())
        own = [*lone.subscriptions, *lone.services, *lone.timers, *lone.waitables]
        assert all(entity.callback_group is not group for entity in own)
        assert "heartbeat" not in {sub.topic_name.rsplit("/", 1)[-1] for sub in lone.subscriptions}
        hb = probe.create_publisher(Empty, f"{NS}_lone/heartbeat", command_qos())
        estop = probe.create_publisher(Bool, f"{NS}_lone/e_stop", command_qos())

        def heard() -> bool:
            hb.publish(Empty())
            return lone.supervisor.heartbeat_ok(time.monotonic())

        wait_for(heard, 5, "a heartbeat handled without the node's executor")
        wait_for(
            lambda: estop.publish(Bool(data=True)) or lone.supervisor.estop_latched, 5, "latch"
        )
    finally:
        lone.destroy_node()
    assert not lone.deadman.thread.is_alive()


def test_heartbeat_counts_from_its_reception() -> None:
    # handled 0.3 s (wall clock) after the middleware received it
    assert stamp_monotonic_s(1_000_000_000, 50.0, 1_300_000_000) == pytest.approx(49.7)
    assert stamp_monotonic_s(0, 50.0, 1_300_000_000) == 50.0  # no timestamp: now
    assert stamp_monotonic_s(2_000_000_000, 50.0, 1_300_000_000) == 50.0  # never later


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_a_non_finite_max_future_stamp_is_refused(bad: float) -> None:
    session = RosSession(fresh_domain_id())
    try:
        with pytest.raises(ValueError, match="max_future_stamp_s must be >= 0 and finite"):
            SafetyNode(
                namespace="/safety_bad",
                context=session.context,
                parameter_overrides=[Parameter("max_future_stamp_s", value=bad)],
            )
    finally:
        session.close()
