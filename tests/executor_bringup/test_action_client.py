"""SafeActionClient: a client polled by a spinning executor while it is being built."""

from __future__ import annotations

import pytest
import rclpy
from control_msgs.action import FollowJointTrajectory
from rclpy.action import ActionClient
from rclpy.context import Context
from rclpy.node import Node
from ros_helpers import fresh_domain_id

from executor_bringup.action_client import SafeActionClient

pytestmark = pytest.mark.ros


def test_a_client_polled_while_it_is_being_built(monkeypatch: pytest.MonkeyPatch) -> None:
    context = Context()
    rclpy.init(context=context, domain_id=fresh_domain_id())
    node = Node("action_client_test", context=context)
    try:
        register = node.add_waitable

        def register_then_poll(waitable: object) -> None:
            register(waitable)
            # What an executor thread spinning this node may do at this very moment.
            waitable.get_num_entities()

        monkeypatch.setattr(node, "add_waitable", register_then_poll)
        with pytest.raises(AttributeError, match="_lock"):
            ActionClient(node, FollowJointTrajectory, "plain")  # rclpy's, in the window
        client = SafeActionClient(node, FollowJointTrajectory, "safe")
        assert client._lock is not SafeActionClient._lock  # its own lock once built
        assert client.get_num_entities().num_clients > 0
        client.destroy()
    finally:
        monkeypatch.undo()
        for waitable in list(node.waitables):  # the half-built client cannot be destroyed
            if isinstance(waitable, ActionClient):
                node.remove_waitable(waitable)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
