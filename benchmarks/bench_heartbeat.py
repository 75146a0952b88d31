"""Dead-man under load: heartbeat-to-handling delay, false stops, idle CPU of the nodes.

    .venv/bin/python benchmarks/bench_heartbeat.py [--goals 50] [--hogs 2]

A real ``sim_arm_node`` (MuJoCo SO-101, no camera, joint_states at 50 Hz) and a real
``safety_node`` (``config/safety_node.yaml``: heartbeat_timeout_s 0.5, action interface)
run as processes. First, with no client, the CPU of both nodes is measured at idle
(``--idle-s``), then again while this process sends the operator heartbeat (10 Hz, a timer
on its own thread, as ``executor-run-task`` does). Then ``--hogs`` busy-loop processes
start and this process sends ``--goals`` closed-loop-sized goals (4 points, 0.4 s, about
0.1 rad) through ``safety/follow_joint_trajectory``, one after the other, as the executor
does. A goal that the safety node stops with "operator heartbeat stale" is a false stop
unless this process really left a gap longer than the timeout between two heartbeats it
sent during the goal (then it is counted apart: the sender stalled, not the safety node).

Printed: goal outcomes and false stops, the heartbeat gaps as sent (this process) and
the safety node's own figures, logged when it shuts down: send-to-handling delay
(middleware source timestamp to the callback; one host clock), time queued in the node,
largest gap between arrivals. Targets: 0 false stops in 50 goals with 2 hogs, idle CPU
< 5 % of a core per node.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
import yaml
from control_msgs.action import FollowJointTrajectory
from executor_interfaces.msg import SafetyStatus
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Empty
from trajectory_msgs.msg import JointTrajectoryPoint

from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.qos import command_qos, sensor_qos, status_qos
from executor_bringup.trajectory_conversion import s_to_duration
from executor_core.robot_description import RobotDescription, default_robot_path

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "/bench_hb"
HEARTBEAT_PERIOD_S = 0.1
SAFETY_PARAMS = yaml.safe_load((REPO / "config" / "safety_node.yaml").read_text())
HEARTBEAT_TIMEOUT_S = SAFETY_PARAMS["/**/safety_node"]["ros__parameters"]["heartbeat_timeout_s"]
CHUNK_POINTS, CHUNK_DT_S, CHUNK_STEP_RAD = 4, 0.1, 0.1
TARGET_IDLE_CPU_PCT = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def start_hogs(count: int) -> list[subprocess.Popen]:
    """``count`` busy-loop processes (plain Python: no rclpy signal handlers inherited)."""
    cmd = [sys.executable, "-c", "while True: pass"]
    return [subprocess.Popen(cmd) for _ in range(count)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_percent(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU over ``seconds`` of wall time, in % of one core."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    start = time.monotonic()
    time.sleep(seconds)
    wall_s = time.monotonic() - start
    return {name: 100 * (cpu_seconds(pid) - before[name]) / wall_s for name, pid in pids.items()}


def start_node(module: str, params_file: str, overrides: dict[str, str], env: dict, log: Path):
    cmd = [sys.executable, "-m", f"executor_bringup.{module}", "--ros-args", "-r"]
    cmd += [f"__ns:={NAMESPACE}", "--params-file", str(REPO / "config" / params_file)]
    for key, value in overrides.items():
        cmd += ["-p", f"{key}:={value}"]
    out = log.open("w")
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


class Client:
    """The operator side: heartbeat on its own thread, goals, joint state, safety status."""

    def __init__(self, robot: RobotDescription) -> None:
        self.robot = robot
        self.node = Node("bench_heartbeat_client", namespace=NAMESPACE)
        self.q: np.ndarray | None = None
        self.stale_transitions = 0
        self._last_ok: bool | None = None
        self.beating = False
        self.beat_times_s: list[float] = []
        self._hb_pub = self.node.create_publisher(Empty, "heartbeat", command_qos())
        self.node.create_subscription(JointState, "joint_states", self._on_js, sensor_qos())
        self.node.create_subscription(SafetyStatus, "safety_status", self._on_status, status_qos())
        self.action = ActionClient(
            self.node, FollowJointTrajectory, "safety/follow_joint_trajectory"
        )
        self.heard = threading.Event()
        self._spin_executor = SingleThreadedExecutor()
        self._spin_executor.add_node(self.node)
        threading.Thread(target=self._spin_executor.spin, daemon=True).start()
        self._closed = threading.Event()
        threading.Thread(target=self._beat_loop, daemon=True).start()

    def _beat_loop(self) -> None:
        """The heartbeat on a plain thread of its own, every HEARTBEAT_PERIOD_S."""
        next_s = time.monotonic()
        while not self._closed.wait(max(0.0, next_s - time.monotonic())):
            next_s = max(next_s + HEARTBEAT_PERIOD_S, time.monotonic())
            if self.beating:
                self._hb_pub.publish(Empty())
                self.beat_times_s.append(time.monotonic())

    def _on_js(self, msg: JointState) -> None:
        names = list(msg.name)
        self.q = np.array([msg.position[names.index(n)] for n in self.robot.joint_names])

    def _on_status(self, msg: SafetyStatus) -> None:
        if msg.heartbeat_ok:
            self.heard.set()
        if self._last_ok and not msg.heartbeat_ok and self.beating:
            self.stale_transitions += 1
        self._last_ok = msg.heartbeat_ok

    def chunk_goal(self, k: int) -> FollowJointTrajectory.Goal:
        """A closed-loop-sized chunk from the measured state: shoulder_pan out and back."""
        goal = FollowJointTrajectory.Goal()
        goal.trajectory.joint_names = list(self.robot.joint_names)
        q0 = self.q.copy()
        target = self.robot.home_rad.copy()
        target[0] += CHUNK_STEP_RAD if k % 2 == 0 else 0.0
        for i in range(1, CHUNK_POINTS + 1):
            q = q0 + (target - q0) * i / CHUNK_POINTS
            goal.trajectory.points.append(
                JointTrajectoryPoint(
                    positions=q.tolist(), time_from_start=s_to_duration(i * CHUNK_DT_S)
                )
            )
        return goal

    def run_goal(self, goal: FollowJointTrajectory.Goal) -> str:
        """Send and wait; returns '' on success, else the error string."""
        sent = _wait(self.action.send_goal_async(goal), 10.0)
        if sent is None or not sent.accepted:
            return "goal not accepted by the safety node in 10 s"
        wrapped = _wait(sent.get_result_async(), 10.0)
        if wrapped is None:
            return "no result in 10 s"
        if wrapped.result.error_code == 0 and wrapped.status == 4:  # STATUS_SUCCEEDED
            return ""
        return wrapped.result.error_string or f"status {wrapped.status}"

    def send_gap_before(self, end_s: float, span_s: float) -> float:
        """The largest gap between two sent heartbeats in [end_s - span_s, end_s]."""
        times = [t for t in self.beat_times_s if end_s - span_s <= t <= end_s] + [end_s]
        earlier = [t for t in self.beat_times_s if t < end_s - span_s]
        times = earlier[-1:] + times
        return float(np.max(np.diff(times))) if len(times) > 1 else span_s

    def close(self) -> None:
        self._closed.set()
        self._spin_executor.shutdown()


def _wait(future, timeout_s: float):
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    return future.result() if done.wait(timeout_s) or future.done() else None


def safety_figures(log: Path) -> str:
    match = re.search(r"heartbeats: .*", log.read_text())
    return match.group(0) if match else "(the safety node logged no heartbeat figures)"


def run_goals(client: Client, n_goals: int, timeout_s: float) -> dict[str, int]:
    """Send the goals one after the other; a dead-man stop is false unless this process
    really left a gap of more than ``timeout_s`` in its heartbeat during the goal."""
    outcomes = {"succeeded": 0, "false stop": 0, "stop after a real sender gap": 0}
    outcomes["other failure"] = 0
    others: list[str] = []
    for k in range(n_goals):
        start_s = time.monotonic()
        why = client.run_goal(client.chunk_goal(k))
        if not why:
            outcomes["succeeded"] += 1
        elif "heartbeat" in why:
            gap_s = client.send_gap_before(time.monotonic(), time.monotonic() - start_s + 1.0)
            kind = "stop after a real sender gap" if gap_s > timeout_s else "false stop"
            outcomes[kind] += 1
            print(f"  goal {k}: {kind} (largest send gap {gap_s:.3f} s): {why}")
        else:
            outcomes["other failure"] += 1
            others.append(why)
        time.sleep(0.1)  # the executor's camera frame + IDM between two chunks
    for why in sorted(set(others)):
        print(f"  other failure x{others.count(why)}: {why}")
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--goals", type=int, default=50)
    parser.add_argument("--hogs", type=int, default=2, help="busy-loop processes")
    parser.add_argument("--idle-s", type=float, default=10.0, help="each idle CPU window")
    parser.add_argument("--domain", type=int, default=1 + (os.getpid() * 7) % 200)
    parser.add_argument("--logs", type=Path, default=Path("/tmp/bench_heartbeat"))
    args = parser.parse_args()

    apply_default_transports()
    args.logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ROS_DOMAIN_ID": str(args.domain), "MUJOCO_GL": "egl"}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    arm = start_node(
        "sim_arm_node",
        "sim_arm_node.yaml",
        {"autostart": "true", "camera_rate_hz": "0.0"},
        env,
        args.logs / "sim_arm.log",
    )
    safety_log = args.logs / "safety.log"
    safety = start_node("safety_node", "safety_node.yaml", {}, env, safety_log)
    pids = {"safety_node": safety.pid, "sim_arm_node": arm.pid}
    rclpy.init(domain_id=args.domain)
    client = Client(RobotDescription.from_yaml(default_robot_path()))
    hogs: list[subprocess.Popen] = []
    try:
        if not client.action.wait_for_server(timeout_sec=60):
            sys.exit("safety/follow_joint_trajectory not up in 60 s; see " + str(args.logs))
        while client.q is None:
            time.sleep(0.1)
        time.sleep(2.0)  # discovery settles
        idle = cpu_percent(pids, args.idle_s)
        client.beating = True
        if not client.heard.wait(20):
            sys.exit("the safety node never reported the heartbeat")
        with_beat = cpu_percent(pids, args.idle_s)
        hogs = start_hogs(args.hogs)
        time.sleep(1.0)
        start = time.monotonic()
        busy_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        outcomes = run_goals(client, args.goals, HEARTBEAT_TIMEOUT_S)
        busy_s = time.monotonic() - start
        busy = {n: 100 * (cpu_seconds(p) - busy_before[n]) / busy_s for n, p in pids.items()}
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        client.beating = False
        for proc in (safety, arm):
            proc.send_signal(2)
        for proc in (safety, arm):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        client.close()
        rclpy.try_shutdown()

    gaps_ms = 1e3 * np.diff(client.beat_times_s)
    print(
        f"dead-man under load: {args.goals} goals ({CHUNK_POINTS} points, "
        f"{CHUNK_POINTS * CHUNK_DT_S:.1f} s each) through safety_node, {args.hogs} CPU hogs, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end"
    )
    for name, count in outcomes.items():
        print(f"  {name}: {count}")
    print(f"  safety_status heartbeat_ok -> false while beating: {client.stale_transitions}")
    print(
        f"  heartbeat as sent ({1e3 * HEARTBEAT_PERIOD_S:.0f} ms period): "
        f"{len(client.beat_times_s)} beats, gap p50 {np.percentile(gaps_ms, 50):.1f} ms, "
        f"p99 {np.percentile(gaps_ms, 99):.1f} ms, max {gaps_ms.max():.1f} ms"
    )
    print(f"  safety_node: {safety_figures(safety_log)}")
    for name in pids:
        print(
            f"  {name} CPU (% of a core): idle {idle[name]:.1f}, idle with heartbeat "
            f"{with_beat[name]:.1f}, during the goals {busy[name]:.1f}"
        )
    false_stops = outcomes["false stop"]
    idle_ok = idle["safety_node"] < TARGET_IDLE_CPU_PCT
    print(
        f"  targets: false stops {false_stops} (target 0) -> "
        f"{'met' if false_stops == 0 else 'MISSED'}; safety_node idle CPU "
        f"{idle['safety_node']:.1f} % (target < {TARGET_IDLE_CPU_PCT:g} %) -> "
        f"{'met' if idle_ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
