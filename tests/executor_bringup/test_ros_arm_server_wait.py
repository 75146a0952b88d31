"""RosArm waits a bounded time for the FollowJointTrajectory server, and a cancel ends
the wait; in-process over real DDS with no server on the graph."""

from __future__ import annotations

import time

import numpy as np
import pytest
from control_msgs.action import FollowJointTrajectory
from ros_helpers import RosSession, fresh_domain_id
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

import executor_bringup.ros_arm as ros_arm
from executor_bringup.action_client import SafeActionClient
from executor_bringup.qos import command_qos
from executor_bringup.ros_arm import RosArm, RosArmConfig, SensorCache
from executor_core.goal_runner import GoalAborted, GoalCanceled, Guard
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.types import JointTrajectory

ROBOT = RobotDescription.from_yaml(default_robot_path())


@pytest.fixture
def arm():
    session = RosSession(fresh_domain_id())
    node = session.node("server_wait_test")
    fjt = SafeActionClient(node, FollowJointTrajectory, "nobody/follow_joint_trajectory")
    hold = node.create_publisher(JointTrajectoryMsg, "nobody/joint_trajectory", command_qos())
    config = RosArmConfig("action", "/nobody/follow_joint_trajectory", 1.0, 0.1, 1.0, "")
    try:
        yield RosArm(node, SensorCache(ROBOT.joint_names), config, fjt, hold, None, lambda x: x)
    finally:
        session.close()


def _chunk() -> JointTrajectory:
    return JointTrajectory(ROBOT.joint_names, ROBOT.home_rad[None], np.array([0.1]))


def test_no_server_aborts_after_the_wait_naming_it(arm, monkeypatch) -> None:
    monkeypatch.setattr(ros_arm, "SERVER_WAIT_S", 0.5)
    t0 = time.monotonic()
    with pytest.raises(
        GoalAborted,
        match=r"no FollowJointTrajectory server at "
        r"'/nobody/follow_joint_trajectory' in 0.5 s",
    ):
        arm.send(_chunk(), Guard(30.0), tolerate_goal_miss=True)
    assert 0.5 <= time.monotonic() - t0 < 5.0


def test_a_cancel_ends_the_wait(arm) -> None:
    canceled_at = time.monotonic() + 0.3
    guard = Guard(30.0, cancel_requested=lambda: time.monotonic() >= canceled_at)
    t0 = time.monotonic()
    with pytest.raises(GoalCanceled):
        arm.send(_chunk(), guard, tolerate_goal_miss=True)
    assert time.monotonic() - t0 < ros_arm.SERVER_WAIT_S  # not the whole wait
