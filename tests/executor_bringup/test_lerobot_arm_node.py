"""lerobot_arm_node over real DDS: LeRobot's SO101Follower, unchanged, against the Feetech
bus test double (a pseudo-terminal served by this process, the MuJoCo arm behind it)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import time
from pathlib import Path

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from control_msgs.action import FollowJointTrajectory
from control_msgs.msg import JointTolerance
from rclpy.parameter import Parameter
from ros_helpers import RosSession, SafeActionClient, fresh_domain_id, result_of, wait_for
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from trajectory_msgs.msg import JointTrajectoryPoint

from executor_bringup.lerobot_arm_node import LeRobotArmNode
from executor_bringup.qos import command_qos, sensor_qos
from executor_bringup.trajectory_conversion import s_to_duration
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.trajectory_control import (
    INVALID_GOAL,
    INVALID_JOINTS,
    OLD_HEADER_TIMESTAMP,
    PATH_TOLERANCE_VIOLATED,
    SUCCESSFUL,
)
from executor_sim.feetech_bus_double import (
    FeetechBusDoubleProcess,
    lerobot_calibration_for,
    write_lerobot_calibration,
)

pytestmark = pytest.mark.ros
NS = "/lerobot_arm_test"
ROBOT_ID = "node_test_arm"
DESCRIPTION = RobotDescription.from_yaml(default_robot_path())
NAMES = DESCRIPTION.joint_names
HOME = DESCRIPTION.home_rad


class Rig:
    def __init__(self, tmp: Path, policy: str, extra: list[Parameter] | None = None) -> None:
        calibration = lerobot_calibration_for(DESCRIPTION, {"shoulder_pan": -90, "gripper": 30})
        write_lerobot_calibration(calibration, tmp / f"{ROBOT_ID}.json")
        self.bus = FeetechBusDoubleProcess(DESCRIPTION, calibration)
        self.session = RosSession(fresh_domain_id())
        self.node = self.session.add(
            LeRobotArmNode(
                namespace=NS,
                context=self.session.context,
                parameter_overrides=[
                    Parameter("port", value=self.bus.port),
                    Parameter("robot_id", value=ROBOT_ID),
                    Parameter("calibration_dir", value=str(tmp)),
                    Parameter("torque_policy", value=policy),
                    Parameter("goal_time_tolerance_s", value=3.0),
                    Parameter("autostart", value=True),
                    *(extra or []),
                ],
            )
        )
        probe = self.session.node("probe", NS)
        self.states: list[JointState] = []
        probe.create_subscription(JointState, "joint_states", self.states.append, sensor_qos())
        self.client = SafeActionClient(
            probe, FollowJointTrajectory, "arm_controller/follow_joint_trajectory"
        )
        self.topic = probe.create_publisher(
            JointTrajectoryMsg, "arm_controller/joint_trajectory", command_qos()
        )
        self.estop = probe.create_publisher(Bool, "e_stop", command_qos())
        assert self.client.wait_for_server(timeout_sec=20)
        wait_for(lambda: bool(self.states), 10, "joint_states")

    def q(self) -> np.ndarray:
        return np.array(self.states[-1].position)

    def close(self) -> None:
        self.node.shutdown_arm()
        self.session.close()
        self.bus.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory):
    rig = Rig(tmp_path_factory.mktemp("lerobot_cal"), "hold")
    yield rig
    rig.close()


def goal_of(points: list[tuple[np.ndarray, float]], names=NAMES) -> FollowJointTrajectory.Goal:
    goal = FollowJointTrajectory.Goal()
    goal.trajectory.joint_names = list(names)
    goal.trajectory.points = [
        JointTrajectoryPoint(positions=q.tolist(), time_from_start=s_to_duration(t))
        for q, t in points
    ]
    goal.goal_time_tolerance = s_to_duration(5.0)
    return goal


def send(rig: Rig, goal: FollowJointTrajectory.Goal, timeout_s: float = 20.0):
    handle = result_of(rig.client.send_goal_async(goal), 10)
    assert handle.accepted
    return result_of(handle.get_result_async(), timeout_s)


def test_old_header_timestamp_is_the_message_constant() -> None:
    assert FollowJointTrajectory.Result.OLD_HEADER_TIMESTAMP == OLD_HEADER_TIMESTAMP


def test_joint_states_are_the_arm_in_radians(rig: Rig) -> None:
    msg = rig.states[-1]
    assert list(msg.name) == list(NAMES)
    np.testing.assert_allclose(rig.q(), rig.bus.joint_positions_rad(), atol=0.01)
    np.testing.assert_allclose(rig.q(), HOME, atol=0.01)


def test_follow_joint_trajectory_reaches_a_positions_only_chunk(rig: Rig) -> None:
    start = rig.q()
    delta = np.array([0.25, 0.1, -0.15, 0.1, 0.3, 0.4])
    points = [(start + delta * k / 4, 0.25 * k) for k in range(1, 5)]
    res = send(rig, goal_of(points))
    assert res.status == GoalStatus.STATUS_SUCCEEDED, res.result.error_string
    assert res.result.error_code == SUCCESSFUL
    wait_for(lambda: np.abs(rig.q() - points[-1][0]).max() < 0.05, 3, "joint_states at goal")
    np.testing.assert_allclose(rig.bus.joint_positions_rad(), points[-1][0], atol=0.05)


def test_error_codes(rig: Rig) -> None:
    q = rig.q()
    res = send(rig, goal_of([(q, 1.0)], ("base", *NAMES[1:])))
    assert res.result.error_code == INVALID_JOINTS
    res = send(rig, goal_of([(q + np.array([0, 0, 3.0, 0, 0, 0]), 1.0)]))
    assert res.result.error_code == INVALID_GOAL
    assert "'elbow_flex' point 0" in res.result.error_string
    old = goal_of([(q, 0.5)])
    old.trajectory.header.stamp.sec = 1  # 1970: long over
    assert send(rig, old).result.error_code == OLD_HEADER_TIMESTAMP
    fast = goal_of([(q + np.array([0.6, 0, 0, 0, 0, 0]), 0.3)])
    fast.path_tolerance = [JointTolerance(name="shoulder_pan", position=0.01)]
    res = send(rig, fast)
    assert res.result.error_code == PATH_TOLERANCE_VIOLATED
    assert "'shoulder_pan' path error" in res.result.error_string
    wait_for(lambda: abs(rig.q()[1] - rig.bus.joint_positions_rad()[1]) < 0.01, 3, "settled")


def test_preemption_and_empty_trajectory_hold(rig: Rig) -> None:
    q = rig.q()
    far = q + np.array([-0.5, 0, 0, 0, 0, 0])
    first = result_of(rig.client.send_goal_async(goal_of([(far, 6.0)])), 10)
    wait_for(lambda: rig.q()[0] < q[0] - 0.05, 5, "motion toward the first goal")
    msg = goal_of([(q + np.array([-0.1, 0, 0, 0, 0, 0]), 6.0)]).trajectory
    rig.topic.publish(msg)  # preempts the action's trajectory
    res = result_of(first.get_result_async(), 10)
    assert res.status == GoalStatus.STATUS_ABORTED
    assert "preempted" in res.result.error_string
    rig.topic.publish(JointTrajectoryMsg(joint_names=list(NAMES)))  # empty: hold here
    wait_for(lambda: abs(rig.states[-1].velocity[0]) < 0.02, 5, "arm settled after the hold")
    held = rig.q()[0]
    time.sleep(1.0)
    assert abs(rig.q()[0] - held) < 0.01
    assert held > q[0] - 0.45  # stopped well before the first goal


def test_lost_motor_aborts_the_goal_naming_it_and_refuses_goals(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "torque_off")
    try:
        q = rig.q()
        handle = result_of(
            rig.client.send_goal_async(goal_of([(q + np.array([0.3, 0, 0, 0, 0, 0]), 4.0)])), 10
        )
        wait_for(lambda: abs(rig.q()[0] - q[0]) > 0.02, 5, "motion")
        rig.bus.unplug(["wrist_flex"])
        res = result_of(handle.get_result_async(), 10)
        assert res.status == GoalStatus.STATUS_ABORTED
        assert "'wrist_flex' (id 4)" in res.result.error_string  # named, maybe with others
        assert "answer" in res.result.error_string
        # torque_off: the motors that still answer let go
        torque = rig.bus.torque_enabled()
        assert not torque["shoulder_pan"]
        assert not torque["gripper"]  # also the motors after the silent one
        assert torque["wrist_flex"]  # unreachable: it keeps its last goal
        res = send(rig, goal_of([(q, 1.0)]))
        assert res.result.error_code == INVALID_GOAL
        assert "wrist_flex" in res.result.error_string
        # deactivate / activate reconnects once the motor answers again
        rig.bus.replug()
        assert rig.node.trigger_deactivate().name == "SUCCESS"
        assert rig.node.trigger_activate().name == "SUCCESS"
        assert all(rig.bus.torque_enabled().values())
        assert send(rig, goal_of([(rig.q(), 0.5)])).result.error_code == SUCCESSFUL
    finally:
        rig.close()


def test_estop_applies_the_torque_policy(rig: Rig) -> None:
    rig.estop.publish(Bool(data=True))
    wait_for(lambda: rig.node.stopped_reason is not None, 5, "the arm stopped")
    assert "e-stop (hold)" in rig.node.stopped_reason
    assert all(rig.bus.torque_enabled().values())  # hold: torque stays on
    res = send(rig, goal_of([(rig.q(), 1.0)]))
    assert res.result.error_code == INVALID_GOAL
    assert "e-stop" in res.result.error_string
    # deactivate (hold: torque on; goals refused while inactive), activate: goals again
    assert rig.node.trigger_deactivate().name == "SUCCESS"
    assert all(rig.bus.torque_enabled().values())
    res = send(rig, goal_of([(rig.q(), 1.0)]))
    assert res.result.error_code == INVALID_GOAL
    assert "not active" in res.result.error_string
    assert rig.node.trigger_activate().name == "SUCCESS"
    assert send(rig, goal_of([(rig.q(), 0.5)])).result.error_code == SUCCESSFUL


class LeRobotCameraDouble:
    """Test double of a LeRobot camera (OpenCVCamera's interface as the node uses it):
    (24, 32, 3) RGB frames whose first pixel counts the reads."""

    color_mode = "rgb"

    def __init__(self) -> None:
        self.is_connected = False
        self.reads = 0

    def connect(self) -> None:
        self.is_connected = True

    def disconnect(self) -> None:
        self.is_connected = False

    def read_latest(self, max_age_ms: int = 500) -> np.ndarray:
        assert self.is_connected
        self.reads += 1
        frame = np.zeros((24, 32, 3), np.uint8)
        frame[0, 0] = (self.reads % 256, 7, 9)
        return frame


def test_a_lerobot_camera_publishes_image_raw(tmp_path: Path, monkeypatch) -> None:
    camera = LeRobotCameraDouble()
    monkeypatch.setattr(
        "robot_drivers.lerobot_camera.make_cameras_from_configs", lambda cfgs: {"camera": camera}
    )
    spec = "{type: opencv, index_or_path: 0, width: 32, height: 24, fps: 10}"
    rig = Rig(
        tmp_path,
        "hold",
        [Parameter("camera", value=spec), Parameter("camera_rate_hz", value=20.0)],
    )
    images: list[Image] = []
    infos: list[CameraInfo] = []
    probe = rig.session.node("camera_probe", NS)
    probe.create_subscription(Image, "image_raw", images.append, sensor_qos())
    probe.create_subscription(CameraInfo, "camera_info", infos.append, sensor_qos())
    try:
        wait_for(lambda: len(images) >= 3 and infos, 10, "image_raw and camera_info")
        img = images[-1]
        assert (img.width, img.height, img.encoding) == (32, 24, "rgb8")
        assert img.header.frame_id == "scene_camera"
        assert list(img.data[1:3]) == [7, 9]  # the double's pixel, in RGB order
        assert (infos[-1].width, infos[-1].height) == (32, 24)
        assert camera.reads >= 3
        assert rig.node.trigger_deactivate().name == "SUCCESS"
        assert not camera.is_connected
    finally:
        rig.close()
