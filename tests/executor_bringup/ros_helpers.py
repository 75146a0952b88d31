"""Shared helpers for the ROS tests: isolated DDS domains, node processes, waiting.

Every test module gets its own ROS_DOMAIN_ID (derived from the pid, so parallel pytest
runs of other engineers on this machine do not cross-talk, and from the xdist worker, so
the suite's own workers do not) and its own rclpy context.
The test process and every node process it starts use the stack's Fast DDS transports
(``executor_bringup.dds_transport``): the production setting.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.task import Future

from executor_bringup.action_client import SafeActionClient  # noqa: F401  (re-exported)
from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.spin_executors import QueueSafeMultiThreadedExecutor

REPO = Path(__file__).resolve().parents[2]
apply_default_transports()  # before any rclpy.init of this process; inherited by children
_counter = [0]


def _domain_slice() -> tuple[int, int]:
    """This process's share of domains 1..200: all of them, or under pytest-xdist
    (``scripts/test.sh`` runs ``-n``) the worker's own slice, so that two workers never
    share a domain."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    size = max(1, 200 // max(1, count))
    return 1 + (index * size) % 200, size


def fresh_domain_id() -> int:
    """A DDS domain for one test module: in 1..200, distinct per process and call (and per
    xdist worker)."""
    _counter[0] += 1
    first, size = _domain_slice()
    return first + (os.getpid() * 7 + _counter[0] * 31) % size


class RosSession:
    """An rclpy context on its own domain, with a spinning QueueSafeMultiThreadedExecutor."""

    def __init__(self, domain_id: int) -> None:
        self.domain_id = domain_id
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.spin_executor = QueueSafeMultiThreadedExecutor(num_threads=4, context=self.context)
        self._thread = threading.Thread(target=self.spin_executor.spin, daemon=True)
        self._thread.start()

    def add(self, node: Node) -> Node:
        self.spin_executor.add_node(node)
        return node

    def node(self, name: str, namespace: str = "") -> Node:
        return self.add(Node(name, namespace=namespace, context=self.context))

    def close(self) -> None:
        self.spin_executor.shutdown()
        self._thread.join(timeout=5.0)
        for node in list(self.spin_executor.get_nodes()):
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


# CI runners are shared and stall a test process for seconds at a time (a 20 Hz timer was
# seen silent for 3.7 s). A wait that succeeds returns as soon as its predicate holds, so
# the slack costs nothing on a passing run; it only delays the report of a real failure.
WAIT_SLACK = 4.0


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until it holds; ``timeout_s`` is stretched by ``WAIT_SLACK``."""
    timeout_s *= WAIT_SLACK
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def result_of(future: Future, timeout_s: float) -> object:
    wait_for(future.done, timeout_s, "a future")
    return future.result()


def node_process(
    module: str, domain_id: int, namespace: str, params: dict[str, object], log_path: Path
) -> subprocess.Popen:
    """Start ``python -m executor_bringup.<module>`` with -p overrides, logging to a file."""
    cmd = [
        sys.executable,
        "-m",
        f"executor_bringup.{module}",
        "--ros-args",
        "-r",
        f"__ns:={namespace}",
    ]
    for key, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        cmd += ["-p", f"{key}:={text}"]
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": str(domain_id),
        "MUJOCO_GL": "egl",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(log_path, "w")  # noqa: SIM115  (closed when the process is reaped)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


def assert_running(procs: list[subprocess.Popen], log_paths: list[Path]) -> None:
    """Fail naming every node process of a graph that has ended, with its exit status and
    the end of its log: the tests after a node died then say so, instead of each waiting out
    its timeouts on a graph that can no longer answer."""
    ended = [
        f"{log.stem} (exit status {proc.returncode}) ended; its log ends:\n"
        f"{log.read_text(errors='replace')[-2000:]}"
        for proc, log in zip(procs, log_paths, strict=True)
        if proc.poll() is not None
    ]
    if ended:
        raise AssertionError("a node of the graph is gone: " + "\n".join(ended))


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(2)  # SIGINT: rclpy shuts down cleanly
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
