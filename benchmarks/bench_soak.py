"""Soak: N goals back to back on the sim graph, with cancels, e-stops and one node restart.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_soak.py [--goals 100] [--models random]

The graph is ``executor-bringup sim`` (``config/bringup_sim.yaml``): the launcher runs
sim_arm_node and safety_node; executor_node runs beside it with the very command line the
launcher would give it (``launcher.build_commands``), so that this benchmark can kill it
once, mid-goal (SIGKILL, a crash), and start it again. ``--models random`` (default): the
tiny random test-double models, and no task verifier (a random model never solves the
task); ``--models committed``: the committed sim checkpoints and the task verifier, as the
sim graph runs them. Every goal asks for one segment (``max_replans`` 0).

This process is the operator: heartbeat at 10 Hz, goals back to back, a cancel every
``--cancel-every`` goals, an e-stop (``e_stop`` true, then the ``reset_e_stop`` service)
every ``--estop-every`` goals, and it records ``joint_states``. It prints:

- the outcome of every kind of goal (status and the first words of the message);
- each node process's memory (RSS) at the start (graph up), after ``--warmup`` goals and at
  the end; target: growth from the warm-up to the end within ``--rss-bound-mib`` per node;
- every motion outside an accepted trajectory: joint_states moving more than
  ``--stray-rad`` from where the arm settled while no goal was active (from
  ``--settle-s`` after a goal ended, or after executor_node was killed, until the next
  goal was sent). Target: none.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
import yaml
from action_msgs.msg import GoalStatus
from executor_interfaces.action import ExecuteTask
from executor_interfaces.msg import SafetyStatus
from rclpy.action import ActionClient
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Empty
from std_srvs.srv import Trigger

from executor_bringup.bringup_config import default_config_path, load_bringup_config
from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.launcher import build_commands, node_environment
from executor_bringup.process_exit import die_with_parent
from executor_bringup.qos import command_qos, sensor_qos, status_qos
from executor_bringup.spin_executors import QueueSafeMultiThreadedExecutor

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "/soak"
PROMPT = "put the red cube in the bowl"
DISCOVERY_S = 3.0  # a restarted node's action server reaches our client (same host)
STATUS_NAMES = {
    GoalStatus.STATUS_SUCCEEDED: "succeeded",
    GoalStatus.STATUS_ABORTED: "aborted",
    GoalStatus.STATUS_CANCELED: "canceled",
}


@dataclass
class Window:
    """No goal active from ``start`` (already settled) to ``end``: the arm must not move."""

    start: float
    end: float
    after: str  # what ended before it


@dataclass
class Soak:
    goals: list[tuple[int, str, str, float]] = field(default_factory=list)  # i, kind, outcome, s
    windows: list[Window] = field(default_factory=list)
    rss: dict[str, dict[str, float]] = field(default_factory=dict)  # process -> label -> MiB


class Operator(Node):
    """Heartbeat, goals, cancels, e-stops, and the joint_states record."""

    def __init__(self) -> None:
        super().__init__("soak_operator", namespace=NAMESPACE)
        self.q_log: list[tuple[float, np.ndarray]] = []
        self.latched = False
        self._lock = threading.Lock()
        self.create_subscription(JointState, "joint_states", self._on_js, sensor_qos())
        self.create_subscription(SafetyStatus, "safety_status", self._on_status, status_qos())
        self.heartbeat = self.create_publisher(Empty, "heartbeat", command_qos())
        self.estop = self.create_publisher(Bool, "e_stop", command_qos())
        self.reset = self.create_client(Trigger, "reset_e_stop")
        self.client = ActionClient(self, ExecuteTask, "execute_task")

    def _on_js(self, msg: JointState) -> None:
        with self._lock:
            self.q_log.append((time.monotonic(), np.array(msg.position)))

    def _on_status(self, msg: SafetyStatus) -> None:
        self.latched = msg.estop_latched

    def positions_between(self, t0: float, t1: float) -> np.ndarray:
        with self._lock:
            return np.array([q for t, q in self.q_log if t0 <= t <= t1])


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def node_pids(launcher_pid: int) -> dict[str, int]:
    """The launcher's node processes by node name (from their ``__node:=`` argument)."""
    pids = {}
    for task in Path(f"/proc/{launcher_pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            for arg in args:
                if arg.startswith(b"__node:="):
                    pids[arg.split(b"=", 1)[1].decode()] = int(pid)
    return pids


class Graph:
    """``executor-bringup`` with sim_arm_node and safety_node; executor_node beside it."""

    def __init__(self, args: argparse.Namespace, logs: Path) -> None:
        self.logs = logs
        base = default_config_path("sim")
        config = load_bringup_config(base).with_namespace(NAMESPACE).with_overrides(args.set)
        (executor_cmd,) = [c for name, c in build_commands(config) if name == "executor_node"]
        self.executor_cmd = executor_cmd
        self.env = node_environment(
            {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}, args.domain_id
        )
        # The same YAML without executor_node, parameter files made absolute.
        data = yaml.safe_load(base.read_text())
        data["nodes"] = [n for n in data["nodes"] if n["name"] != "executor_node"]
        for node in data["nodes"]:
            node["parameters"] = [str(base.parent / p) for p in node.get("parameters", [])]
        launcher_yaml = logs / "bringup_soak.yaml"
        launcher_yaml.write_text(yaml.safe_dump(data))
        sets = [s for s in args.set if not s.startswith("executor_node.")]
        cmd = [
            sys.executable,
            "-m",
            "executor_bringup.launcher",
            "sim",
            "--config",
            str(launcher_yaml),
            "--namespace",
            NAMESPACE,
            "--domain-id",
            str(args.domain_id),
            *[a for s in sets for a in ("--set", s)],
        ]
        self.launcher = self._start(cmd, "launcher.log")
        self.executor = self.start_executor()
        self.executor_generation = 0

    def _start(self, cmd: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.logs / log_name, "a")  # noqa: SIM115  (the child keeps it)
        me = os.getpid()
        return subprocess.Popen(
            cmd,
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=lambda: die_with_parent(me),
        )

    def start_executor(self) -> subprocess.Popen:
        return self._start(self.executor_cmd, "executor_node.log")

    def kill_and_restart_executor(self) -> None:
        self.executor.send_signal(signal.SIGKILL)
        self.executor.wait()
        self.executor_generation += 1
        self.executor = self.start_executor()

    def executor_ready(self) -> bool:
        """The current executor_node process has logged that it is ready (the action
        client cannot tell: it still sees the killed server until its lease expires)."""
        text = (self.logs / "executor_node.log").read_text(errors="replace")
        return text.count("]: ready:") > self.executor_generation

    def processes(self) -> dict[str, int]:
        pids = node_pids(self.launcher.pid)
        pids[f"executor_node#{self.executor_generation}"] = self.executor.pid
        return pids

    def stop(self) -> None:
        for proc in (self.executor, self.launcher):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in (self.executor, self.launcher):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def sample_rss(soak: Soak, graph: Graph, label: str) -> None:
    """RSS of every node process under ``label``: "start" and "warm" keep a process's
    first sample, "end" its last."""
    for name, pid in graph.processes().items():
        value = rss_mib(pid)
        if value is not None:
            samples = soak.rss.setdefault(name, {})
            if label == "end":
                samples[label] = value
            else:
                samples.setdefault(label, value)


def run_goal(
    op: Operator, graph: Graph, i: int, kind: str, args: argparse.Namespace
) -> tuple[str, float]:
    """Goal ``i``; returns (outcome, when the arm may have stopped moving)."""
    phases: list[str] = []
    goal = ExecuteTask.Goal(task_prompt=PROMPT, timeout_s=args.goal_timeout_s, max_replans=0)
    future = op.client.send_goal_async(
        goal, feedback_callback=lambda f: phases.append(f.feedback.phase)
    )
    wait_until(future.done, 30, "the goal's acceptance")
    handle = future.result()
    if not handle.accepted:
        return "rejected", time.monotonic()
    result = handle.get_result_async()
    if kind != "plain":
        wait_until(lambda: "executing" in phases or result.done(), 60, "the executing phase")
        time.sleep(float(np.random.default_rng(i).uniform(0.1, 0.5)))  # into a chunk
    if kind == "cancel":
        handle.cancel_goal_async()
    elif kind == "estop":
        op.estop.publish(Bool(data=True))
    elif kind == "restart":
        graph.kill_and_restart_executor()  # mid-goal: no result will come
        return "lost: executor_node killed mid-goal", time.monotonic()
    wait_until(result.done, args.goal_timeout_s + 30, "the goal's result")
    res = result.result()
    message = " ".join(res.result.message.split()[:6])
    outcome = f"{STATUS_NAMES.get(res.status, res.status)}: {message}"
    if kind == "estop":
        wait_until(op.reset.service_is_ready, 10, "reset_e_stop")
        reply = op.reset.call_async(Trigger.Request())
        wait_until(reply.done, 10, "the reset_e_stop reply")
        wait_until(lambda: not op.latched, 10, "the e-stop latch to clear")
    return outcome, time.monotonic()


def schedule(i: int, args: argparse.Namespace) -> str:
    if i == args.restart_at:
        return "restart"
    if args.cancel_every and i % args.cancel_every == args.cancel_every // 3:
        return "cancel"
    if args.estop_every and i % args.estop_every == (2 * args.estop_every) // 3:
        return "estop"
    return "plain"


def stray_motion(op: Operator, windows: list[Window], limit_rad: float) -> tuple[list[str], float]:
    """The idle windows where a joint moved more than ``limit_rad``, and the largest
    displacement seen in any idle window."""
    found, largest = [], 0.0
    for w in windows:
        q = op.positions_between(w.start, w.end)
        if len(q) < 2:
            continue
        moved = np.abs(q - q[0]).max(axis=0)
        largest = max(largest, float(moved.max()))
        if moved.max() > limit_rad:
            found.append(
                f"  {w.end - w.start:5.1f} s idle after {w.after}: moved {moved.max():.4f} rad "
                f"(joint {int(moved.argmax())})"
            )
    return found, largest


def report(soak: Soak, op: Operator, args: argparse.Namespace, wall_s: float) -> bool:
    print(f"\nsoak: {len(soak.goals)} goals in {wall_s / 60:.1f} min, models {args.models}")
    by_kind: dict[str, Counter] = {}
    for _, kind, outcome, _ in soak.goals:
        by_kind.setdefault(kind, Counter())[outcome] += 1
    for kind, outcomes in sorted(by_kind.items()):
        total = sum(outcomes.values())
        print(f"  {kind} ({total}):")
        for outcome, n in outcomes.most_common():
            print(f"    {n:4d}  {outcome}")
    durations = [d for *_, d in soak.goals]
    print(f"  goal wall time: median {np.median(durations):.1f} s, max {max(durations):.1f} s")
    print(
        f"memory (RSS, MiB): start / after {args.warmup} warm-up goals (the restarted "
        "executor_node: after its first ones) / end, growth after warm-up"
    )
    worst = 0.0
    for name, samples in sorted(soak.rss.items()):
        start, warm, end = (samples.get(k, float("nan")) for k in ("start", "warm", "end"))
        growth = end - warm
        worst = max(worst, growth) if np.isfinite(growth) else worst
        print(f"  {name:<18} {start:7.1f} / {warm:7.1f} / {end:7.1f}   {growth:+7.1f}")
    stray, largest = stray_motion(op, soak.windows, args.stray_rad)
    idle_s = sum(w.end - w.start for w in soak.windows)
    print(
        f"motion outside an accepted trajectory (> {args.stray_rad} rad while no goal was "
        f"active; {len(soak.windows)} idle windows, {idle_s:.0f} s, largest displacement "
        f"{largest:.5f} rad): " + ("none" if not stray else f"{len(stray)}")
    )
    for line in stray:
        print(line)
    memory_ok = worst <= args.rss_bound_mib
    print(
        f"memory growth after warm-up: max {worst:+.1f} MiB per node, bound "
        f"{args.rss_bound_mib:.0f} MiB: {'within' if memory_ok else 'EXCEEDED'}"
    )
    return memory_ok and not stray


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--goals", type=int, default=100)
    parser.add_argument("--models", choices=("random", "committed"), default="random")
    parser.add_argument("--cancel-every", type=int, default=10)
    parser.add_argument("--estop-every", type=int, default=10)
    parser.add_argument("--restart-at", type=int, default=None, help="default: goals // 2")
    parser.add_argument("--warmup", type=int, default=5, help="goals before the RSS baseline")
    parser.add_argument("--goal-timeout-s", type=float, default=60.0)
    parser.add_argument("--settle-s", type=float, default=1.0)
    parser.add_argument("--idle-s", type=float, default=0.5, help="watched gap between goals")
    parser.add_argument("--stray-rad", type=float, default=0.01)
    parser.add_argument("--rss-bound-mib", type=float, default=30.0)
    parser.add_argument("--domain-id", type=int, default=1 + (os.getpid() * 13) % 200)
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE")
    args = parser.parse_args(argv)
    if args.restart_at is None:
        args.restart_at = args.goals // 2
    if args.models == "random":  # both paths empty: the test doubles; nothing to verify
        args.set = [
            "executor_node.executor_pipeline_dir=",
            "executor_node.idm_dir=",
            "executor_node.success_service=",
            *args.set,
        ]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    args.set = [f"executor_node.video_dir={logs / 'videos'}", *args.set]
    print(f"logs: {logs}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    apply_default_transports()  # before rclpy.init: every process must agree
    rclpy.init(domain_id=args.domain_id)
    op = Operator()
    spin_executor = QueueSafeMultiThreadedExecutor(num_threads=3)
    spin_executor.add_node(op)
    threading.Thread(target=spin_executor.spin, daemon=True).start()
    beating = threading.Event()
    beating.set()

    def beat() -> None:
        while beating.is_set():
            op.heartbeat.publish(Empty())
            time.sleep(0.1)

    threading.Thread(target=beat, daemon=True).start()
    graph = Graph(args, logs)
    soak = Soak()
    t_start = time.monotonic()
    try:
        wait_until(lambda: op.client.server_is_ready() and op.q_log, 300, "the graph")
        time.sleep(args.settle_s)
        idle_from = time.monotonic()
        after = "startup"
        sample_rss(soak, graph, "start")
        for i in range(args.goals):
            time.sleep(args.idle_s)
            kind = schedule(i, args)
            t0 = time.monotonic()
            soak.windows.append(Window(idle_from, t0, after))
            try:
                outcome, ended = run_goal(op, graph, i, kind, args)
            except TimeoutError as exc:
                outcome, ended = f"timeout: {exc}", time.monotonic()
            soak.goals.append((i, kind, outcome, time.monotonic() - t0))
            print(f"goal {i:3d} {kind:<7} {time.monotonic() - t0:5.1f} s  {outcome}", flush=True)
            if kind == "restart":  # the arm must hold all the while
                wait_until(graph.executor_ready, 300, "the restarted executor_node")
                time.sleep(DISCOVERY_S)
                sample_rss(soak, graph, "start")
            idle_from = ended + args.settle_s
            after = f"goal {i} ({kind})"
            time.sleep(args.settle_s)
            sample_rss(soak, graph, "end")
            if i + 1 == args.warmup or i == args.restart_at + args.warmup:
                sample_rss(soak, graph, "warm")
        time.sleep(args.idle_s)
        soak.windows.append(Window(idle_from, time.monotonic(), after))
        sample_rss(soak, graph, "end")
    finally:
        beating.clear()
        graph.stop()
        spin_executor.shutdown()
        op.destroy_node()
        rclpy.try_shutdown()
    return 0 if report(soak, op, args, time.monotonic() - t_start) else 1


if __name__ == "__main__":
    sys.exit(main())
