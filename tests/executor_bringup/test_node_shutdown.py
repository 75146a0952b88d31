"""Node processes stop promptly and cleanly on SIGINT (what executor-bringup sends first).

sim_arm_node renders with EGL on its camera thread; before the fix its GL context was
left to the garbage collector and failed with EGL_NOT_INITIALIZED at exit, and both nodes
spent 2-10 s in interpreter teardown (torch, lerobot), past the launcher's patience.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from executor_interfaces.action import ExecuteTask
from ros_helpers import RosSession, SafeActionClient, fresh_domain_id, node_process, wait_for
from sensor_msgs.msg import Image

from executor_bringup.qos import sensor_qos

pytestmark = pytest.mark.ros
NS = "/shutdown_test"
# Measured here after the fix: 0.3-0.5 s; before: 2.4 s idle, 5-10 s on a loaded host.
MAX_EXIT_S = 2.0


def _stop_timed(proc: subprocess.Popen) -> float:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return time.monotonic() - t0


def test_sim_arm_and_executor_nodes_exit_promptly_without_egl_errors(tmp_path: Path) -> None:
    domain = fresh_domain_id()
    logs = {"sim": tmp_path / "sim.log", "exec": tmp_path / "exec.log"}
    procs = {
        "sim": node_process(
            "sim_arm_node",
            domain,
            NS,
            {"autostart": True, "camera_rate_hz": 10.0},
            logs["sim"],
        ),
        "exec": node_process(
            "executor_node", domain, NS, {"video_dir": str(tmp_path / "v")}, logs["exec"]
        ),
    }
    session = RosSession(domain)
    try:
        probe = session.node("probe", NS)
        images: list[Image] = []
        probe.create_subscription(Image, "image_raw", images.append, sensor_qos())
        client = SafeActionClient(probe, ExecuteTask, "execute_task")
        # Rendering must really run (the renderer exists) before we stop the node.
        wait_for(
            lambda: len(images) >= 3 and client.server_is_ready(),
            150,
            "rendered images and the executor's action server",
        )
        exit_s = {name: _stop_timed(proc) for name, proc in procs.items()}
    finally:
        session.close()
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, proc in procs.items():
        log = logs[name].read_text()
        assert proc.returncode == 0, f"{name}: exit code {proc.returncode}\n{log[-2000:]}"
        assert "EGL" not in log, f"{name}:\n{log[-3000:]}"
        assert "Traceback" not in log, f"{name}:\n{log[-3000:]}"
        assert exit_s[name] < MAX_EXIT_S, f"{name} took {exit_s[name]:.2f} s to exit"
