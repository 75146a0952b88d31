"""LatestMessage over real DDS: the newest message on demand, never through an executor."""

from __future__ import annotations

import time

import pytest
from ros_helpers import RosSession, fresh_domain_id, wait_for
from sensor_msgs.msg import JointState

from executor_bringup.polled_subscription import LatestMessage, PolledGroup
from executor_bringup.qos import sensor_qos

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def session():
    session = RosSession(fresh_domain_id())
    yield session
    session.close()


def test_take_returns_the_newest_message_with_its_reception_time(session) -> None:
    node = session.node("polled_test", "/polled")  # spun by the session's executor
    latest = LatestMessage(node, JointState, "joint_states", sensor_qos(1))
    assert isinstance(latest.subscription.callback_group, PolledGroup)
    pub = node.create_publisher(JointState, "joint_states", sensor_qos())
    assert latest.take() is None
    wait_for(lambda: pub.get_subscription_count() == 1, 5, "the polled reader to match")
    for i in range(3):
        pub.publish(JointState(name=["j"], position=[float(i)]))
        time.sleep(0.05)
    wait_for(lambda: latest.take() is not None and latest.take()[0].position[0] == 2.0, 5, "msg")
    msg, received_s = latest.take()  # nothing new: the same message again
    assert list(msg.position) == [2.0]
    assert time.monotonic() - 5.0 < received_s <= time.monotonic()


def test_depth_other_than_one_is_refused(session) -> None:
    node = session.node("polled_depth", "/polled")
    with pytest.raises(ValueError, match="depth 1, got 5"):
        LatestMessage(node, JointState, "joint_states", sensor_qos(5))
