"""executor-run-task: argument validation, exit codes, the heartbeat before the goal."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from executor_interfaces.action import ExecuteTask
from executor_interfaces.msg import SafetyStatus
from rclpy.action import ActionServer, GoalResponse
from ros_helpers import REPO, RosSession, fresh_domain_id
from std_msgs.msg import Empty

from executor_bringup.qos import command_qos, status_qos
from executor_bringup.run_task_client import parse_args


def test_parse_args() -> None:
    args = parse_args(["put the red cube in the bowl", "--namespace", "/r1", "--timeout", "5"])
    assert (args.task, args.namespace, args.timeout) == ("put the red cube in the bowl", "/r1", 5)
    with pytest.raises(SystemExit):
        parse_args(["   "])
    with pytest.raises(SystemExit):
        parse_args(["go", "--timeout", "-1"])
    with pytest.raises(SystemExit):
        parse_args(["go", "--heartbeat-wait", "0"])
    assert parse_args(["go", "--max-replans", "-1"]).max_replans == -1  # the node's default


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--timeout", "nan"),
        ("--timeout", "inf"),
        ("--server-wait", "-1"),
        ("--server-wait", "nan"),
        ("--heartbeat-wait", "inf"),
        ("--max-replans", "-2"),
    ],
)
def test_parse_args_names_a_bad_value(flag: str, value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["go", flag, value])
    assert exit_info.value.code == 2
    assert f"{flag} must be" in capsys.readouterr().err


@pytest.mark.ros
def test_exit_code_2_without_server() -> None:
    env = {**os.environ, "ROS_DOMAIN_ID": str(fresh_domain_id())}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "executor_bringup.run_task_client",
            "go",
            "--server-wait",
            "1",
            "--namespace",
            "/nobody_here",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no execute_task server in namespace '/nobody_here'" in proc.stderr


def _client(domain: int, namespace: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "executor_bringup.run_task_client",
            "put the red cube in the bowl",
            "--namespace",
            namespace,
            "--timeout",
            "20",
            *extra,
        ],
        env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
    )


class GraphDouble:
    """Test doubles of executor_node's action server and of safety_node's heartbeat side.

    The safety double reports ``heartbeat_ok`` on its latched ``safety_status`` once a
    beat arrived (``confirm``), or never; the executor double records how many beats
    the safety double had received when each goal came in.
    """

    def __init__(self, session: RosSession, namespace: str, listen: bool, confirm: bool) -> None:
        node = session.node("graph_double", namespace)
        self.beats = 0
        self.beats_at_goal: list[int] = []
        self._confirm = confirm
        self._status = node.create_publisher(SafetyStatus, "safety_status", status_qos())
        self._status.publish(SafetyStatus(heartbeat_ok=False))
        if listen:
            node.create_subscription(Empty, "heartbeat", self._on_beat, command_qos())
        self.server = ActionServer(
            node, ExecuteTask, "execute_task", self._execute, goal_callback=self._on_goal
        )

    def _on_beat(self, _msg: Empty) -> None:
        self.beats += 1
        if self.beats == 1 and self._confirm:
            self._status.publish(SafetyStatus(heartbeat_ok=True))

    def _on_goal(self, _goal: ExecuteTask.Goal) -> GoalResponse:
        self.beats_at_goal.append(self.beats)
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle: object) -> ExecuteTask.Result:
        goal_handle.succeed()
        return ExecuteTask.Result(
            success=True,
            message="double: done",
            imagined_video_path="/videos/abc_0.mp4",
            executed_video_path="/videos/abc_0_executed.mp4",
        )


@pytest.mark.ros
def test_goal_is_sent_only_after_the_safety_node_heard_heartbeats() -> None:
    domain = fresh_domain_id()
    session = RosSession(domain)
    try:
        double = GraphDouble(session, "/hb_ok", listen=True, confirm=True)
        proc = _client(domain, "/hb_ok")
        assert proc.returncode == 0, proc.stderr
        assert "success: True" in proc.stdout
        assert "message: double: done" in proc.stdout
        assert "imagined video: /videos/abc_0.mp4" in proc.stdout
        assert "executed video: /videos/abc_0_executed.mp4" in proc.stdout
        assert len(double.beats_at_goal) == 1
        # heartbeat_ok came after a beat, and HEARTBEAT_LEAD_BEATS were published
        assert double.beats_at_goal[0] >= 1
    finally:
        session.close()


@pytest.mark.ros
def test_unconfirmed_heartbeat_is_a_clear_bounded_error() -> None:
    domain = fresh_domain_id()
    session = RosSession(domain)
    try:
        deaf = GraphDouble(session, "/hb_nobody", listen=False, confirm=False)
        t0 = time.monotonic()
        proc = _client(domain, "/hb_nobody", "--heartbeat-wait", "1.5")
        assert proc.returncode == 2
        assert (
            "operator heartbeat not heard: no subscriber on '/hb_nobody/heartbeat' after 1.5 s"
            in proc.stderr
        )
        assert deaf.beats_at_goal == []  # no goal was sent
        assert time.monotonic() - t0 < 30
        # --no-heartbeat skips the wait (bench setups with heartbeat_timeout_s 0)
        proc = _client(domain, "/hb_nobody", "--no-heartbeat")
        assert proc.returncode == 0, proc.stderr
        assert deaf.beats_at_goal == [0]

        silent = GraphDouble(session, "/hb_silent", listen=True, confirm=False)
        proc = _client(domain, "/hb_silent", "--heartbeat-wait", "1.5")
        assert proc.returncode == 2
        assert "the safety node did not report heartbeat_ok within 1.5 s" in proc.stderr
        assert silent.beats > 0
        assert silent.beats_at_goal == []
    finally:
        session.close()
