"""QueueSafeMultiThreadedExecutor: a callback waiting for a pool thread is submitted once.

Both pool threads are held by timer callbacks that block; a message then arrives, so its
callback waits in the pool's queue. rclpy's own MultiThreadedExecutor (our wheels) yields
and submits that waiting task again on every loop, without waiting (ros2/rclpy#1452);
ours submits it once, waits on the wait set, and the callback still runs once the pool
frees up.
"""

from __future__ import annotations

import threading
import time

import pytest
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from ros_helpers import fresh_domain_id, wait_for
from std_msgs.msg import Empty

from executor_bringup.qos import command_qos
from executor_bringup.spin_executors import QueueSafeMultiThreadedExecutor

pytestmark = pytest.mark.ros


def _submissions_while_the_pool_is_held(executor_class: type[MultiThreadedExecutor]) -> dict:
    context = Context()
    rclpy.init(context=context, domain_id=fresh_domain_id())
    spin = executor_class(num_threads=2, context=context)
    submitted: list[float] = []
    pool_submit = spin._executor.submit

    def counting_submit(*args, **kwargs):
        submitted.append(time.monotonic())
        return pool_submit(*args, **kwargs)

    spin._executor.submit = counting_submit
    node = Node("spin_executor_test", context=context)
    group = ReentrantCallbackGroup()
    release, held, received = threading.Event(), [], []

    def hold_a_pool_thread(timer_index: int) -> None:
        timers[timer_index].cancel()  # one-shot
        held.append(timer_index)
        release.wait(10.0)

    timers = [
        node.create_timer(0.01, lambda i=i: hold_a_pool_thread(i), callback_group=group)
        for i in range(2)
    ]
    node.create_subscription(Empty, "tick", lambda _m: received.append(1), command_qos())
    publisher = node.create_publisher(Empty, "tick", command_qos())
    spin.add_node(node)
    thread = threading.Thread(target=spin.spin, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(held) == 2, 10, "both pool threads held")
        wait_for(lambda: publisher.get_subscription_count() == 1, 10, "the subscription")
        before = len(submitted)
        publisher.publish(Empty())
        time.sleep(1.0)  # the message's callback waits in the pool's queue meanwhile
        while_held = len(submitted) - before
        release.set()
        wait_for(lambda: len(received) == 1, 10, "the message's callback")
        return {"while_held": while_held, "received": len(received)}
    finally:
        release.set()
        spin.shutdown(timeout_sec=2.0)
        thread.join(timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_a_queued_callback_is_submitted_once_and_then_runs() -> None:
    result = _submissions_while_the_pool_is_held(QueueSafeMultiThreadedExecutor)
    assert result == {"while_held": 1, "received": 1}


def test_rclpys_own_executor_resubmits_the_queued_callback() -> None:
    """The defect the class exists for, on the installed rclpy. If this fails, the wheels
    carry the upstream fix (ros2/rclpy#1547) and the class can go."""
    result = _submissions_while_the_pool_is_held(MultiThreadedExecutor)
    assert result["received"] == 1
    assert result["while_held"] > 100, result
