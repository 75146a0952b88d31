"""rclpy's MultiThreadedExecutor against ours while another thread makes and destroys
subscriptions, as executor_node's goal recording does at the start and end of each goal.

    .venv/bin/python benchmarks/bench_spin_churn.py [--seconds 20] [--runs 3]

A timer publishes at 500 Hz to a steady subscription; a second thread makes three
subscriptions to the same topic (each with rclpy's default QoS event handlers), sleeps
3 ms and destroys them, over and over. For each executor and run it prints how long the
spin lasted, the make-and-destroy cycles meanwhile, the wait sets ours dropped for an
entity destroyed under it (``wait_sets_rebuilt``) and the steady subscription's messages.
A spin that ends early ended on the exception it prints (ros2/rclpy#1206). Target (ours):
every run lasts ``--seconds``. The race is timing: rclpy's executor loses it within seconds
here; ours, before ``_rebuild_wait_set``, lost it in one of four 30 s runs of this churn
(``tests/executor_bringup/test_spin_executors.py`` makes it happen on purpose).
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
from std_msgs.msg import Empty

from executor_bringup.qos import command_qos
from executor_bringup.spin_executors import QueueSafeMultiThreadedExecutor


def measure(executor_class: type[MultiThreadedExecutor], seconds: float) -> dict:
    context = Context()
    rclpy.init(context=context, domain_id=150 + os.getpid() % 50)
    spin = executor_class(num_threads=2, context=context)
    node = Node("bench_spin_churn", context=context)
    group, received, cycles, stop = ReentrantCallbackGroup(), [0], [0], threading.Event()
    publisher = node.create_publisher(Empty, "tick", command_qos())
    node.create_timer(0.002, lambda: publisher.publish(Empty()), callback_group=group)
    node.create_subscription(
        Empty, "tick", lambda _m: received.__setitem__(0, received[0] + 1), command_qos()
    )

    def churn() -> None:
        while not stop.is_set():
            made = [
                node.create_subscription(Empty, "tick", lambda _m: None, 10, callback_group=group)
                for _ in range(3)
            ]
            time.sleep(0.003)
            for subscription in made:
                node.destroy_subscription(subscription)
            cycles[0] += 1

    spin.add_node(node)
    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    start, error = time.monotonic(), ""
    try:
        while time.monotonic() - start < seconds:
            spin.spin_once(timeout_sec=0.05)
    except Exception as exc:  # what ended the spin is the figure
        error = f"{type(exc).__name__}: {exc}"
    lasted_s = time.monotonic() - start
    stop.set()
    churner.join(timeout=5.0)
    result = {
        "lasted_s": lasted_s,
        "cycles": cycles[0],
        "rebuilt": getattr(spin, "wait_sets_rebuilt", "-"),
        "received": received[0],
        "error": error,
    }
    spin.shutdown(timeout_sec=2.0)
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.seconds <= 0 or args.runs < 1:
        parser.error(f"--seconds must be > 0 and --runs >= 1, got {args.seconds}, {args.runs}")
    header = f"{'executor':32s} {'run':>3s} {'lasted':>8s} {'cycles':>7s} {'rebuilt':>7s}"
    print(f"{header} {'messages':>8s}  ended on")
    for cls in (MultiThreadedExecutor, QueueSafeMultiThreadedExecutor):
        for run in range(args.runs):
            r = measure(cls, args.seconds)
            print(
                f"{cls.__name__:32s} {run:3d} {r['lasted_s']:7.1f}s {r['cycles']:7d} "
                f"{r['rebuilt']!s:>7s} {r['received']:8d}  {r['error'] or '-'}"
            )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
