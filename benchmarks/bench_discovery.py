"""Repeated sim graph starts: do all nodes discover each other, every time?

    .venv/bin/python benchmarks/bench_discovery.py [--runs 20] [--budget-s 600]
        [--hogs 0] [--transport default|fastdds_default|large_data]

Each run starts ``executor-bringup sim`` (the graph of ``scripts/demo.sh``: sim_arm_node,
safety_node, executor_node with the committed sim models) on a fresh ROS domain, then
this process, an operator with the same transports, waits until it sees the three nodes,
the ExecuteTask server, image_raw, joint_states and safety_status, and sends the demo's
task with the heartbeat running. The run counts as "all discovered" once the arm moves:
the executor saw a camera image, reached the safety node's action server, and the safety
node reached the arm's controller. The goal is then canceled and the graph stopped.
Runs stop at ``--runs`` or when ``--budget-s`` is spent (the count is printed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from executor_interfaces.action import ExecuteTask
from executor_interfaces.msg import SafetyStatus
from rclpy.action import ActionClient
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Empty

from executor_bringup.dds_transport import TRANSPORT_CHOICES, select_transports
from executor_bringup.qos import command_qos, sensor_qos, status_qos

REPO = Path(__file__).resolve().parents[1]
NODES = ("sim_arm_node", "safety_node", "executor_node")
TASK = "put the red cube in the bowl"
MOVED_RAD = 0.005


@dataclass
class RunResult:
    ok: bool
    what: str  # what was reached, or what was missing
    seconds: float


class Operator:
    """This process's view of one graph: what it sees, and a goal with the heartbeat."""

    def __init__(self, domain_id: int) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("bench_discovery_operator", context=self.context)
        self.seen: dict[str, int] = {"image_raw": 0, "joint_states": 0, "safety_status": 0}
        self.q: list[np.ndarray] = []
        n = self.node
        n.create_subscription(Image, "image_raw", lambda _m: self._saw("image_raw"), sensor_qos())
        n.create_subscription(JointState, "joint_states", self._on_js, sensor_qos())
        n.create_subscription(
            SafetyStatus, "safety_status", lambda _m: self._saw("safety_status"), status_qos()
        )
        self._hb = n.create_publisher(Empty, "heartbeat", command_qos())
        n.create_timer(0.1, lambda: self._hb.publish(Empty()))
        self.action = ActionClient(n, ExecuteTask, "execute_task")
        self._spin_executor = SingleThreadedExecutor(context=self.context)
        self._spin_executor.add_node(n)
        self._thread = threading.Thread(target=self._spin_executor.spin, daemon=True)
        self._thread.start()

    def _saw(self, topic: str) -> None:
        self.seen[topic] += 1

    def _on_js(self, msg: JointState) -> None:
        self._saw("joint_states")
        self.q.append(np.array(msg.position))

    def missing(self) -> list[str]:
        """What this operator does not see yet (empty: everything)."""
        names = {name for name, _ns in self.node.get_node_names_and_namespaces()}
        out = [name for name in NODES if name not in names]
        out += [topic for topic, count in self.seen.items() if count == 0]
        if not self.action.server_is_ready():
            out.append("execute_task server")
        return out

    def moved_rad(self, since: int) -> float:
        qs = np.array(self.q[since:])
        return float(np.max(np.abs(qs - qs[0]))) if len(qs) > 1 else 0.0

    def close(self) -> None:
        self._spin_executor.shutdown()
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _wait(predicate, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def goal_moves_the_arm(op: Operator, timeout_s: float) -> str:
    """Send the task; '' once the arm moves, else why not. The goal is canceled after."""
    send = op.action.send_goal_async(ExecuteTask.Goal(task_prompt=TASK, timeout_s=timeout_s))
    if not _wait(send.done, 30.0) or not send.result().accepted:
        return "ExecuteTask goal not accepted"
    handle = send.result()
    result = handle.get_result_async()
    since = len(op.q)
    moved = _wait(lambda: op.moved_rad(since) > MOVED_RAD or result.done(), timeout_s)
    if not result.done():
        handle.cancel_goal_async()
        _wait(result.done, 15.0)
    if moved and op.moved_rad(since) > MOVED_RAD:
        return ""
    message = result.result().result.message if result.done() else "no result"
    return f"the arm did not move (goal: {message})"


def one_run(args: argparse.Namespace, run: int, env: dict[str, str]) -> RunResult:
    domain_id = 1 + (os.getpid() * 7 + run * 31) % 200
    start = time.monotonic()
    log = (args.logs / f"run{run:02d}.log").open("w")
    launcher = subprocess.Popen(
        [str(REPO / ".venv/bin/executor-bringup"), "sim", "--domain-id", str(domain_id)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    op = Operator(domain_id)
    try:
        if not _wait(lambda: not op.missing(), args.startup_timeout_s):
            return RunResult(False, f"missing {op.missing()}", time.monotonic() - start)
        why = goal_moves_the_arm(op, args.goal_timeout_s)
        return RunResult(not why, why or "the arm moved", time.monotonic() - start)
    finally:
        op.close()
        launcher.send_signal(2)
        try:
            launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            launcher.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--budget-s", type=float, default=600.0, help="stop starting runs then")
    parser.add_argument("--hogs", type=int, default=0, help="busy-loop processes meanwhile")
    parser.add_argument("--transport", choices=TRANSPORT_CHOICES, default="default")
    parser.add_argument("--startup-timeout-s", type=float, default=180.0)
    parser.add_argument("--goal-timeout-s", type=float, default=120.0)
    parser.add_argument("--logs", type=Path, default=Path("/tmp/bench_discovery"))
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    in_effect = select_transports(os.environ, args.transport)  # before any rclpy.init
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    results: list[RunResult] = []
    end = time.monotonic() + args.budget_s
    try:
        while len(results) < args.runs and time.monotonic() < end:
            results.append(one_run(args, len(results), env))
            r = results[-1]
            verdict = "ok" if r.ok else "FAILED"
            print(f"  run {len(results) - 1}: {verdict} in {r.seconds:.0f} s: {r.what}")
            sys.stdout.flush()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    ok = sum(r.ok for r in results)
    seconds = [r.seconds for r in results]
    print(
        f"sim graph starts, transport {args.transport} ({in_effect}), {args.hogs} CPU hogs, "
        f"{os.cpu_count()} CPUs: all nodes discovered each other in {ok} of {len(results)} "
        f"runs (asked for {args.runs}, budget {args.budget_s:.0f} s); start to arm motion "
        f"median {np.median(seconds):.0f} s, max {max(seconds):.0f} s; logs in {args.logs}"
    )


if __name__ == "__main__":
    main()
