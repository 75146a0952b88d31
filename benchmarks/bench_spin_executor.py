"""rclpy's MultiThreadedExecutor against ours while a callback waits for a pool thread.

    .venv/bin/python benchmarks/bench_spin_executor.py [--hold-s 1.0] [--messages 20]

Both pool threads (``num_threads`` 2, as executor_node and policy_node spin) are held by
callbacks that block for ``--hold-s``; meanwhile ``--messages`` messages arrive on a
subscription, so their callbacks wait in the pool's queue. For each executor it prints the
pool submissions during the hold, the CPU time this process used meanwhile, and whether
every message's callback ran afterwards. Targets (ours): one submission, and no busy CPU
while the callbacks wait. rclpy's executor in the wheels of this machine resubmits the
waiting callback on every loop (ros2/rclpy#1452), and its loop never sleeps: the
subscription leaves the wait set while its callback is handed out, but its QoS event
handlers stay, and the middleware reports the wait set ready at once while the message is
unread (with the subscription's event handlers turned off, rclpy's executor idles too).
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Empty

from executor_bringup.spin_executors import QueueSafeMultiThreadedExecutor


def measure(executor_class: type[MultiThreadedExecutor], hold_s: float, messages: int) -> dict:
    context = Context()
    rclpy.init(context=context, domain_id=150 + os.getpid() % 50)
    spin = executor_class(num_threads=2, context=context)
    submitted = [0]
    pool_submit = spin._executor.submit

    def counting_submit(*args, **kwargs):
        submitted[0] += 1
        return pool_submit(*args, **kwargs)

    spin._executor.submit = counting_submit
    node = Node("bench_spin_executor", context=context)
    group, release, held, received = ReentrantCallbackGroup(), threading.Event(), [], []

    def hold(_msg: Empty) -> None:
        held.append(1)
        release.wait(30.0)

    queue_all = QoSProfile(depth=messages + 2, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Empty, "hold", hold, queue_all, callback_group=group)
    node.create_subscription(Empty, "tick", lambda _m: received.append(1), queue_all)
    holder = node.create_publisher(Empty, "hold", queue_all)
    publisher = node.create_publisher(Empty, "tick", queue_all)
    spin.add_node(node)
    thread = threading.Thread(target=spin.spin, daemon=True)
    thread.start()
    try:
        while holder.get_subscription_count() < 1 or publisher.get_subscription_count() < 1:
            time.sleep(0.01)
        holder.publish(Empty())
        holder.publish(Empty())
        while len(held) < 2:
            time.sleep(0.01)
        before_submitted, cpu0, wall0 = submitted[0], time.process_time(), time.monotonic()
        for _ in range(messages):
            publisher.publish(Empty())
            time.sleep(hold_s / messages)
        cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
        during = submitted[0] - before_submitted
        release.set()
        end = time.monotonic() + 10.0
        while len(received) < messages and time.monotonic() < end:
            time.sleep(0.01)
        return {"submissions": during, "cpu_s": cpu_s, "wall_s": wall_s, "ran": len(received)}
    finally:
        release.set()
        spin.shutdown(timeout_sec=2.0)
        thread.join(timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold-s", type=float, default=1.0)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    if args.hold_s <= 0 or args.messages < 1:
        parser.error(
            f"--hold-s must be > 0 and --messages >= 1, got {args.hold_s}, {args.messages}"
        )
    print(f"{'executor':34s} {'submissions':>11s} {'CPU during hold':>16s} {'callbacks run':>14s}")
    for cls in (MultiThreadedExecutor, QueueSafeMultiThreadedExecutor):
        r = measure(cls, args.hold_s, args.messages)
        cpu = f"{r['cpu_s']:.2f} s / {r['wall_s']:.2f} s"
        ran = f"{r['ran']} of {args.messages}"
        print(f"{cls.__name__:34s} {r['submissions']:11d} {cpu:>16s} {ran:>14s}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
