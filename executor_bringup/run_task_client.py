"""executor-run-task: send one ExecuteTask goal, print feedback and the result.

    executor-run-task "put the red cube in the bowl" [--namespace /robot1] [--timeout 120]

While the goal runs the client publishes the operator heartbeat (the safety node's
dead-man) at 10 Hz, so motion stops if this process dies. The goal is sent only once the
safety node's latched ``safety_status`` reports ``heartbeat_ok`` (and the heartbeat has a
matched subscriber and ``HEARTBEAT_LEAD_BEATS`` beats went out), so the safety node has
heard the operator before the first trajectory arrives (bounded by ``--heartbeat-wait``).
Ctrl-C cancels the goal. The result prints ``success``, the message (with a task
verifier configured, the verifier's verdict), and the paths of the imagined and the
executed videos.
Exit code: 0 success, 1 goal failed/rejected/canceled, 2 no server or the heartbeat not
confirmed, 3 timed out.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time

import rclpy
from executor_interfaces.action import ExecuteTask
from executor_interfaces.msg import SafetyStatus
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Empty

from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.qos import command_qos, status_qos
from executor_core.config_cli import OneLineArgumentParser

HEARTBEAT_PERIOD_S = 0.1
# The result (a service response) and the last feedback (a topic) are not ordered: under
# load the spinner can take the result first. Before printing it, the spinner gets this
# long to run the feedback callbacks already waiting, so the last phase is not lost.
FEEDBACK_DRAIN_S = 0.3
# Beats published after the subscriber matched, on top of the safety node's confirmation.
HEARTBEAT_LEAD_BEATS = 3


class Heartbeat:
    """The operator heartbeat (10 Hz) and the safety node's view of it (``safety_status``).

    A matched subscription alone is not enough: the safety node may not have matched our
    writer yet, and a volatile reader drops what came before (measured: goals rejected
    with "no operator heartbeat received yet" after 3 beats to a matched subscriber). So
    the goal waits until the safety node's latched ``SafetyStatus`` says ``heartbeat_ok``.
    """

    def __init__(self, node: Node) -> None:
        self.publisher = node.create_publisher(Empty, "heartbeat", command_qos())
        self._lock = threading.Lock()
        self.beats = 0
        self.status: SafetyStatus | None = None
        self._status_topic = node.resolve_topic_name("safety_status")
        node.create_subscription(SafetyStatus, "safety_status", self._on_status, status_qos())
        node.create_timer(HEARTBEAT_PERIOD_S, self._beat)

    def _beat(self) -> None:
        self.publisher.publish(Empty())
        with self._lock:
            self.beats += 1

    def _on_status(self, msg: SafetyStatus) -> None:
        with self._lock:
            self.status = msg

    def beats_sent(self) -> int:
        with self._lock:
            return self.beats

    def heard(self) -> bool:
        with self._lock:
            return self.status is not None and self.status.heartbeat_ok

    def wait_until_heard(self, timeout_s: float, lead_beats: int = HEARTBEAT_LEAD_BEATS) -> str:
        """Block until the safety node reports our heartbeat; '' or why not (bounded)."""
        deadline = time.monotonic() + timeout_s
        while self.publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                return (
                    f"no subscriber on {self.publisher.topic_name!r} after {timeout_s} s "
                    "(is the safety node running in this namespace and ROS domain?)"
                )
            time.sleep(0.02)
        target = self.beats_sent() + lead_beats
        while self.beats_sent() < target or not self.heard():
            if time.monotonic() > deadline:
                with self._lock:
                    status = self.status
                if status is None:
                    return f"no SafetyStatus on {self._status_topic!r} within {timeout_s} s"
                return (
                    f"the safety node did not report heartbeat_ok within {timeout_s} s "
                    f"({self.beats_sent()} beats sent on {self.publisher.topic_name!r})"
                )
            time.sleep(0.02)
        return ""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineArgumentParser(prog="executor-run-task", description=__doc__.split("\n")[0])
    parser.add_argument("task", help='short task, e.g. "put the red cube in the bowl"')
    parser.add_argument("--namespace", default="", help="namespace of the executor stack")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds (client side)")
    parser.add_argument(
        "--server-wait", type=float, default=10.0, help="seconds to wait for the action server"
    )
    parser.add_argument("--max-replans", type=int, default=-1, help="-1: node default")
    parser.add_argument(
        "--heartbeat-wait",
        type=float,
        default=10.0,
        help="seconds to wait for the safety node to subscribe to the heartbeat",
    )
    parser.add_argument(
        "--no-heartbeat", action="store_true", help="do not publish the operator heartbeat"
    )
    args = parser.parse_args(argv)
    if not args.task.strip():
        parser.error(f"task must not be empty, got {args.task!r}")
    for flag in ("--timeout", "--server-wait", "--heartbeat-wait"):
        value = getattr(args, flag[2:].replace("-", "_"))
        if not (math.isfinite(value) and value > 0):
            parser.error(f"{flag} must be a finite number of seconds > 0, got {value!r}")
    if args.max_replans < -1:
        parser.error(f"--max-replans must be >= -1 (-1: node default), got {args.max_replans!r}")
    return args


def run(args: argparse.Namespace) -> int:
    node = Node("run_task_client", namespace=args.namespace or None)
    spin_executor = SingleThreadedExecutor()
    spin_executor.add_node(node)
    spinner = threading.Thread(target=spin_executor.spin, daemon=True)
    spinner.start()
    heartbeat = None if args.no_heartbeat else Heartbeat(node)
    client = ActionClient(node, ExecuteTask, "execute_task")
    try:
        if not client.wait_for_server(timeout_sec=args.server_wait):
            print(f"no execute_task server in namespace {args.namespace or '/'!r}", file=sys.stderr)
            return 2
        if heartbeat is not None:
            # Sending earlier races the safety node: "no operator heartbeat received yet".
            why = heartbeat.wait_until_heard(args.heartbeat_wait)
            if why:
                print(f"operator heartbeat not heard: {why}", file=sys.stderr)
                return 2
        goal = ExecuteTask.Goal(
            task_prompt=args.task, timeout_s=args.timeout, max_replans=args.max_replans
        )

        def on_feedback(fb: object) -> None:
            f = fb.feedback
            print(f"[{f.elapsed_s:7.2f} s] {f.phase:<10} {100 * f.progress:5.1f} %", flush=True)

        done = threading.Event()
        send = client.send_goal_async(goal, feedback_callback=on_feedback)
        send.add_done_callback(lambda _f: done.set())
        if not done.wait(10.0):
            print("goal not answered in 10 s", file=sys.stderr)
            return 2
        handle = send.result()
        if not handle.accepted:
            print(
                "goal rejected (the executor is busy, or the task is empty or longer than its "
                "max_prompt_chars; the executor_node log says which)",
                file=sys.stderr,
            )
            return 1
        result_done = threading.Event()
        get_result = handle.get_result_async()
        get_result.add_done_callback(lambda _f: result_done.set())
        deadline = time.monotonic() + args.timeout + 5.0
        try:
            while not result_done.wait(0.1):
                if time.monotonic() > deadline:
                    handle.cancel_goal_async()
                    print(f"timed out after {args.timeout} s; cancel sent", file=sys.stderr)
                    return 3
        except KeyboardInterrupt:
            cancel_done = threading.Event()
            handle.cancel_goal_async().add_done_callback(lambda _f: cancel_done.set())
            cancel_done.wait(2.0)
            print("canceled by the operator", file=sys.stderr)
            return 1
        time.sleep(FEEDBACK_DRAIN_S)
        res = get_result.result().result
        print(f"success: {res.success}")
        print(f"message: {res.message}")
        print(f"trajectory points: {len(res.trajectory.points)}")
        print(f"imagined video: {res.imagined_video_path or '(none)'}")
        print(f"executed video: {res.executed_video_path or '(none)'}")
        print(f"recording: {res.recording_path or '(none)'}")
        print(f"replans used: {res.replans_used}")
        return 0 if res.success else 1
    finally:
        spin_executor.shutdown()
        spinner.join(timeout=2.0)
        node.destroy_node()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ros_args = argv[argv.index("--ros-args") :] if "--ros-args" in argv else []
    args = parse_args(argv[: len(argv) - len(ros_args)])
    apply_default_transports()  # before rclpy.init: every process must agree
    rclpy.init(args=["run_task_client", *ros_args])
    try:
        code = run(args)
    finally:
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
