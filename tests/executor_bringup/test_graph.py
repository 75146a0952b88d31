"""The whole graph, one process per node, on the simulated arm over real DDS.

sim_arm_node (MuJoCo SO-101, autostart) <- safety_node (action proxy) <- executor_node
(tiny random test-double models). Goals come from a separate client process
(``executor-run-task``) or from this test process, which also plays the operator: it
publishes the heartbeat and the e-stop.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from executor_interfaces.action import ExecuteTask
from executor_interfaces.msg import SafetyStatus
from ros_helpers import (
    REPO,
    RosSession,
    SafeActionClient,
    assert_running,
    fresh_domain_id,
    node_process,
    result_of,
    stop_process,
    wait_for,
)
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Empty
from std_srvs.srv import Trigger

from executor_bringup.qos import command_qos, sensor_qos, status_qos

pytestmark = pytest.mark.ros
NS = "/graph_test"
PROMPT = "put the red cube in the bowl"
# Generous for a shared CI runner: a 10 Hz heartbeat was seen silent for 3.7 s there.
HEARTBEAT_TIMEOUT_S = 5.0


class Operator:
    """This test process's view of the graph."""

    def __init__(
        self, session: RosSession, procs: list[subprocess.Popen], log_paths: list[Path]
    ) -> None:
        self.node = session.node("operator", NS)
        self.procs, self.log_paths = procs, log_paths
        self.q: np.ndarray | None = None
        self.q_log: list[tuple[float, np.ndarray]] = []
        self.images = 0
        self.status: list[SafetyStatus] = []
        self.heartbeat_on = True
        n = self.node
        n.create_subscription(JointState, "joint_states", self._on_js, sensor_qos())
        n.create_subscription(Image, "image_raw", self._on_image, sensor_qos())
        n.create_subscription(SafetyStatus, "safety_status", self.status.append, status_qos())
        self._hb = n.create_publisher(Empty, "heartbeat", command_qos())
        self.estop = n.create_publisher(Bool, "e_stop", command_qos())
        self.reset = n.create_client(Trigger, "reset_e_stop")
        self.client = SafeActionClient(n, ExecuteTask, "execute_task")
        n.create_timer(0.1, self._beat)

    def _on_js(self, msg: JointState) -> None:
        self.q = np.array(msg.position)
        self.q_log.append((time.monotonic(), self.q))

    def _on_image(self, _msg: Image) -> None:
        self.images += 1

    def _beat(self) -> None:
        if self.heartbeat_on:
            self._hb.publish(Empty())

    def send(self, prompt: str = PROMPT, timeout_s: float = 30.0, feedback: list | None = None):
        assert_running(self.procs, self.log_paths)  # a node that died earlier is named
        goal = ExecuteTask.Goal(task_prompt=prompt, timeout_s=timeout_s, max_replans=0)
        cb = feedback.append if feedback is not None else None
        return result_of(self.client.send_goal_async(goal, feedback_callback=cb), 10)

    def motion_since(self, t0: float) -> float:
        """Largest joint displacement (rad) seen on joint_states since t0."""
        qs = [q for t, q in self.q_log if t >= t0]
        return float(np.max(np.abs(np.array(qs) - qs[0]))) if len(qs) > 1 else 0.0


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    logs = tmp_path_factory.mktemp("graph_logs")
    domain = fresh_domain_id()
    video_dir = logs / "videos"
    log_paths = [logs / f"{name}.log" for name in ("sim", "safety", "exec")]
    procs = [
        node_process(
            "sim_arm_node",
            domain,
            NS,
            {"autostart": True, "camera_rate_hz": 10.0, "goal_time_tolerance_s": 3.0},
            log_paths[0],
        ),
        node_process(
            "safety_node",
            domain,
            NS,
            {"heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S},
            log_paths[1],
        ),
        node_process(
            "executor_node",
            domain,
            NS,
            {"max_image_age_s": 3.0, "settle_timeout_s": 4.0, "video_dir": str(video_dir)},
            log_paths[2],
        ),
    ]
    session = RosSession(domain)
    op = Operator(session, procs, log_paths)
    try:
        # The first start of the simulator imports lerobot (slow on a loaded machine).
        wait_for(
            lambda: op.client.server_is_ready() and op.images > 0 and op.q is not None,
            150,
            "executor action server, images and joint_states",
        )
        yield op, video_dir, domain, logs
    finally:
        session.close()
        for proc in procs:
            stop_process(proc)
        for log_path in log_paths:
            sys.stderr.write(log_path.read_text()[-3000:])


def test_goal_from_client_process_moves_the_arm(graph) -> None:
    op, video_dir, domain, _ = graph
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "executor_bringup.run_task_client",
            PROMPT,
            "--namespace",
            NS,
            "--timeout",
            "30",
        ],
        env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success: True" in proc.stdout
    assert "executing" in proc.stdout
    assert "verifying" in proc.stdout
    assert "trajectory points: 16" in proc.stdout  # 4 frame pairs x 4 control steps
    imagined = sorted(Path(video_dir).glob("*_0.mp4"))
    executed = sorted(Path(video_dir).glob("*_0_executed.mp4"))
    assert len(imagined) == len(executed) == 1  # the sim camera ran while the arm moved
    assert imagined[0].stat().st_size > 0
    assert executed[0].stat().st_size > 0
    assert f"imagined video: {imagined[0]}" in proc.stdout
    assert f"executed video: {executed[0]}" in proc.stdout
    assert op.motion_since(t0) > 0.01  # the simulated joints really moved


def test_second_goal_while_busy_is_rejected(graph) -> None:
    op, *_ = graph
    first = op.send()
    assert first.accepted
    second = op.send("another task")
    assert not second.accepted
    res = result_of(first.get_result_async(), 40)
    assert res.status == GoalStatus.STATUS_SUCCEEDED, res.result.message
    third = op.send()  # accepted again once idle
    assert third.accepted
    res = result_of(third.get_result_async(), 40)
    assert res.status == GoalStatus.STATUS_SUCCEEDED, res.result.message


def test_cancel_stops_motion(graph) -> None:
    op, *_ = graph
    feedback: list = []
    handle = op.send(feedback=feedback)
    wait_for(lambda: any(f.feedback.phase == "executing" for f in feedback), 20, "executing")
    result_of(handle.cancel_goal_async(), 5)
    res = result_of(handle.get_result_async(), 20)
    assert res.status == GoalStatus.STATUS_CANCELED
    assert "hold" in res.result.message
    time.sleep(0.5)  # let the arm settle at the hold point
    t_hold = time.monotonic()
    time.sleep(0.8)
    assert op.motion_since(t_hold) < 0.005


def test_estop_aborts_latches_and_resets(graph) -> None:
    op, *_ = graph
    feedback: list = []
    handle = op.send(feedback=feedback)
    wait_for(lambda: any(f.feedback.phase == "executing" for f in feedback), 20, "executing")
    op.estop.publish(Bool(data=True))
    res = result_of(handle.get_result_async(), 20)
    assert res.status == GoalStatus.STATUS_ABORTED
    assert "e-stop" in res.result.message
    time.sleep(0.5)  # the controller got the cancel and holds
    t_hold = time.monotonic()
    time.sleep(0.8)
    assert op.motion_since(t_hold) < 0.005
    wait_for(lambda: op.status and op.status[-1].estop_latched, 5, "latched status")
    blocked = result_of(op.send().get_result_async(), 30)
    assert blocked.status == GoalStatus.STATUS_ABORTED
    assert "e-stop latched" in blocked.result.message
    response = result_of(op.reset.call_async(Trigger.Request()), 5)
    assert response.success
    wait_for(lambda: not op.status[-1].estop_latched, 5, "latch cleared")
    again = result_of(op.send().get_result_async(), 40)
    assert again.status == GoalStatus.STATUS_SUCCEEDED, again.result.message


def test_dead_man_blocks_without_heartbeat(graph) -> None:
    op, *_ = graph
    op.heartbeat_on = False
    try:
        time.sleep(HEARTBEAT_TIMEOUT_S + 0.5)
        res = result_of(op.send().get_result_async(), 30)
        assert res.status == GoalStatus.STATUS_ABORTED
        assert "heartbeat" in res.result.message
    finally:
        op.heartbeat_on = True
    time.sleep(0.3)
