"""The safety node's operator inputs (``heartbeat``, ``e_stop``) on a thread of their own.

Under load a heartbeat must never wait behind the safety node's other callbacks (joint
states at the arm's rate, trajectory checks, action relays): a 1.12 s gap seen by a busy
node, while the operator sent every 0.18 s, was a false dead-man stop. So the two inputs
live on a small helper node (``<node>_deadman``, same namespace and context, no parameter
services), in a ``MutuallyExclusiveCallbackGroup`` of their own, spun by a dedicated
thread with its own ``SingleThreadedExecutor``. The same thread runs the dead-man check
at each deadline (no polling timer): it waits for the next heartbeat at most until the
current one goes stale, so a heartbeat that has arrived is always handled before the
check can call it stale.

A heartbeat counts from when the middleware received it (``MessageInfo``
``received_timestamp``), not from when Python got round to it. ``stats`` keeps the
send-to-handling delays (``source_timestamp``: one host's clock), logged on shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, ShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.subscription import MessageInfo
from std_msgs.msg import Bool, Empty

from executor_bringup.polled_subscription import stamp_monotonic_s
from executor_bringup.qos import command_qos
from executor_core.safety import HeartbeatStats

logger = logging.getLogger(__name__)

# The longest the thread sleeps between two checks when no deadline is near (seconds).
MAX_WAIT_S = 1.0


class DeadmanThread:
    """``heartbeat`` and ``e_stop`` of ``owner`` on their own node, group and thread.

    ``on_heartbeat(received_s)``: a heartbeat arrived at ``received_s`` (monotonic).
    ``on_estop()``: ``e_stop`` said true. ``check(now_s)``: the dead-man check; returns
    the seconds until it is due again (capped at ``MAX_WAIT_S``). The topic names are the
    owner's, remappings applied.
    """

    def __init__(
        self,
        owner: Node,
        on_heartbeat: Callable[[float], None],
        on_estop: Callable[[], None],
        check: Callable[[float], float],
    ) -> None:
        self._on_heartbeat, self._on_estop, self._check = on_heartbeat, on_estop, check
        self.stats = HeartbeatStats()
        self.node = Node(
            f"{owner.get_name()}_deadman",
            namespace=owner.get_namespace(),
            context=owner.context,
            use_global_arguments=False,  # a global __node:= rename would clash with the owner
            start_parameter_services=False,
        )
        self.callback_group = MutuallyExclusiveCallbackGroup()
        self.node.create_subscription(
            Empty,
            owner.resolve_topic_name("heartbeat"),
            self._heartbeat,
            command_qos(),
            callback_group=self.callback_group,
        )
        self.node.create_subscription(
            Bool,
            owner.resolve_topic_name("e_stop"),
            self._estop,
            command_qos(),
            callback_group=self.callback_group,
        )
        self._spin_executor = SingleThreadedExecutor(context=owner.context)
        self._spin_executor.add_node(self.node)
        self._running = True
        self.thread = threading.Thread(target=self._loop, name="deadman", daemon=True)
        self.thread.start()

    def _heartbeat(self, _msg: Empty, info: MessageInfo) -> None:
        now_s, now_ns = time.monotonic(), time.time_ns()
        received_s = stamp_monotonic_s(int(info["received_timestamp"] or 0), now_s, now_ns)
        sent_s = stamp_monotonic_s(int(info["source_timestamp"] or 0), now_s, now_ns)
        self.stats.add(min(sent_s, received_s), received_s, now_s)
        self._on_heartbeat(received_s)

    def _estop(self, msg: Bool) -> None:
        if msg.data:
            self._on_estop()

    def _loop(self) -> None:
        while self._running:
            wait_s = min(MAX_WAIT_S, max(0.0, self._check(time.monotonic())))
            try:
                self._spin_executor.spin_once(timeout_sec=wait_s)
            except (ExternalShutdownException, ShutdownException):
                return
            except Exception:  # a dead dead-man thread would be silent: say so, loudly
                logger.exception("dead-man thread failed")
                raise

    def stop(self) -> None:
        """End the thread, then release its executor and node."""
        self._running = False
        self._spin_executor.wake()
        self.thread.join(timeout=2.0 * MAX_WAIT_S)
        self._spin_executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
