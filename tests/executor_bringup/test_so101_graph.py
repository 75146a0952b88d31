"""`executor-bringup so101 --port <pty>` end to end, over real DDS, without hardware.

The shipped SO-101 graph (config/bringup_so101.yaml: lerobot_arm_node, camera_node,
safety_node, executor_node, static_tf_node), started by the launcher, one process per
node. The arm is the Feetech bus test double served by this process on a pseudo-terminal
(the MuJoCo SO-101 behind it), and LeRobot's SO101Follower drives it unchanged inside
lerobot_arm_node. The camera is camera_node's synthetic source and the models are the
executor_node's tiny random test doubles (no checkpoint configured).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from control_msgs.action import FollowJointTrajectory
from ros_helpers import (
    REPO,
    RosSession,
    SafeActionClient,
    fresh_domain_id,
    result_of,
    wait_for,
)
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Empty
from trajectory_msgs.msg import JointTrajectoryPoint

from executor_bringup.qos import command_qos, sensor_qos
from executor_bringup.trajectory_conversion import s_to_duration
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.trajectory_control import SUCCESSFUL
from executor_sim.feetech_bus_double import (
    FeetechBusDoubleProcess,
    lerobot_calibration_for,
    write_lerobot_calibration,
)

pytestmark = pytest.mark.ros
NS = "/so101_test"
ROBOT_ID = "so101_graph_test"
PROMPT = "put the red cube in the bowl"
DESCRIPTION = RobotDescription.from_yaml(default_robot_path())


class Operator:
    def __init__(self, session: RosSession) -> None:
        self.node = session.node("operator", NS)
        self.q: np.ndarray | None = None
        self.images = 0
        self.joint_states = 0
        n = self.node
        n.create_subscription(JointState, "joint_states", self._on_js, sensor_qos())
        n.create_subscription(Image, "image_raw", self._on_image, sensor_qos())
        self._hb = n.create_publisher(Empty, "heartbeat", command_qos())
        n.create_timer(0.1, lambda: self._hb.publish(Empty()))
        self.arm = SafeActionClient(n, FollowJointTrajectory, "safety/follow_joint_trajectory")

    def _on_js(self, msg: JointState) -> None:
        self.q = np.array(msg.position)
        self.joint_states += 1

    def _on_image(self, _msg: Image) -> None:
        self.images += 1


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("so101_graph")
    calibration = lerobot_calibration_for(DESCRIPTION, {"shoulder_lift": 150})
    write_lerobot_calibration(calibration, tmp / f"{ROBOT_ID}.json")
    bus = FeetechBusDoubleProcess(DESCRIPTION, calibration)
    domain = fresh_domain_id()
    settings = {
        "lerobot_arm_node.calibration_dir": str(tmp),
        "lerobot_arm_node.robot_id": ROBOT_ID,
        "lerobot_arm_node.goal_time_tolerance_s": 3.0,
        # The double answers from this (test) process's threads; while five nodes import
        # torch at once on a 2-core CI host it can miss LeRobot's ~35 ms ping deadline for
        # a second or more (a fresh-clone CI run failed all 3 attempts within 1 s).
        "lerobot_arm_node.connect_retries": 10,
        "lerobot_arm_node.connect_retry_delay_s": 1.0,
        "camera_node.source": "synthetic",
        "camera_node.rate_hz": 10.0,
        "camera_node.width": 96,
        "camera_node.height": 64,
        "safety_node.heartbeat_timeout_s": 5.0,
        "executor_node.max_image_age_s": 3.0,
        "executor_node.settle_timeout_s": 4.0,
        "executor_node.video_dir": str(tmp / "videos"),
    }
    cmd = [sys.executable, "-m", "executor_bringup.launcher", "so101", "--port", bus.port]
    cmd += ["--domain-id", str(domain), "--namespace", NS]
    for key, value in settings.items():
        cmd += ["--set", f"{key}={value}"]
    log_path = tmp / "launcher.log"
    log = open(log_path, "w")  # noqa: SIM115  (closed below)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    launcher = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    session = RosSession(domain)
    op = Operator(session)
    try:
        wait_for(
            lambda: (
                _launcher_alive(launcher, log_path)
                and op.arm.server_is_ready()
                and op.images > 0
                and op.q is not None
            ),
            150,
            "the safety node's action server, images and joint_states",
        )
        # The operator hearing joint_states does not mean the safety node (and executor)
        # do: a goal sent before theirs match is rejected ("no measured joint state yet").
        wait_for(
            lambda: op.node.count_subscribers("joint_states") >= 3,
            60,
            "the safety node's and executor's joint_states subscriptions",
        )
        seen = op.joint_states
        wait_for(lambda: op.joint_states >= seen + 10, 30, "ten joint_states after they matched")
        yield op, bus, domain, launcher
    finally:
        session.close()
        launcher.send_signal(signal.SIGINT)  # the launcher stops its nodes in order
        try:
            launcher.wait(timeout=40)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
        log.close()
        bus.close()
        sys.stderr.write(log_path.read_text()[-6000:])


def _launcher_alive(launcher: subprocess.Popen, log_path: Path) -> bool:
    """True while the launcher runs; a launcher that exited (a node died) fails the wait
    at once with its log, instead of after the whole timeout."""
    if launcher.poll() is not None:
        raise AssertionError(
            f"the launcher exited with {launcher.returncode}:\n{log_path.read_text()[-4000:]}"
        )
    return True


def test_joint_states_come_from_the_arm_through_lerobot(graph) -> None:
    op, bus, _, launcher = graph
    assert launcher.poll() is None, "the launcher exited: a node died"
    np.testing.assert_allclose(op.q, bus.joint_positions_rad(), atol=0.01)


def test_follow_joint_trajectory_through_the_safety_node_moves_the_arm(graph) -> None:
    op, bus, *_ = graph
    start = op.q.copy()
    target = start + np.array([0.15, 0.1, -0.1, 0.1, 0.2, 0.2])
    goal = FollowJointTrajectory.Goal()
    goal.trajectory.joint_names = list(DESCRIPTION.joint_names)
    goal.trajectory.points = [
        JointTrajectoryPoint(
            positions=(start + (target - start) * k / 4).tolist(),
            time_from_start=s_to_duration(0.4 * k),
        )
        for k in range(1, 5)
    ]
    goal.goal_time_tolerance = s_to_duration(5.0)
    handle = result_of(op.arm.send_goal_async(goal), 20)
    assert handle.accepted
    res = result_of(handle.get_result_async(), 30)
    assert res.status == GoalStatus.STATUS_SUCCEEDED, res.result.error_string
    assert res.result.error_code == SUCCESSFUL
    np.testing.assert_allclose(bus.joint_positions_rad(), target, atol=0.05)
    wait_for(lambda: np.abs(op.q - target).max() < 0.05, 3, "joint_states at the target")


def test_execute_task_from_the_client_completes(graph) -> None:
    _, bus, domain, _ = graph
    before = bus.joint_positions_rad()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "executor_bringup.run_task_client",
            PROMPT,
            "--namespace",
            NS,
            "--timeout",
            "60",
        ],
        env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success: True" in proc.stdout
    assert "trajectory points: 16" in proc.stdout  # 4 frame pairs x 4 control steps
    time.sleep(0.5)
    assert np.abs(bus.joint_positions_rad() - before).max() > 0.01  # the arm really moved


def test_bad_port_is_refused_before_any_node_starts(tmp_path: Path) -> None:
    missing = tmp_path / "ttyACM9"
    proc = subprocess.run(
        [sys.executable, "-m", "executor_bringup.launcher", "so101", "--port", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert str(missing) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
