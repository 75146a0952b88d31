"""The robot side both goal-serving nodes share (``executor_node``, ``policy_node``).

It covers the camera and joint-state subscriptions, the controller's
``follow_joint_trajectory`` action and ``joint_trajectory`` hold topic, and the optional task
verifier. ``connect_arm`` builds the ``RosArm`` over them. ``ConnectedArm.destroy`` undoes
it, for a lifecycle node's cleanup. Both nodes read the same parameter names
(``controller_name``, ``success_service``, ``max_image_age_s``, ``max_clock_skew_s``,
``settle_timeout_s``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from control_msgs.action import FollowJointTrajectory
from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.subscription import Subscription
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from executor_bringup.action_client import SafeActionClient
from executor_bringup.goal_media import GoalMedia
from executor_bringup.goal_recording import GoalRecording
from executor_bringup.image_conversion import ImageConversionError, image_to_rgb8
from executor_bringup.polled_subscription import LatestMessage
from executor_bringup.qos import command_qos, sensor_qos
from executor_bringup.ros_arm import RosArm, RosArmConfig, SensorCache


@dataclass
class ConnectedArm:
    """The ``RosArm`` and the ROS entities made for it."""

    arm: RosArm
    image_subscription: Subscription
    hold_publisher: Publisher
    follow_joint_trajectory: SafeActionClient

    def destroy(self, node: Node) -> None:
        """Destroy every entity ``connect_arm`` created (a lifecycle node's cleanup)."""
        node.destroy_subscription(self.image_subscription)
        if self.arm.sensors.joint_states is not None:
            node.destroy_subscription(self.arm.sensors.joint_states.subscription)
        node.destroy_publisher(self.hold_publisher)
        self.follow_joint_trajectory.destroy()
        if self.arm.verifier is not None:
            node.destroy_client(self.arm.verifier)


def arm_config(node: Node, output_mode: str) -> RosArmConfig:
    """The ``RosArmConfig`` the node's parameters give."""
    service = node.get_parameter("success_service").value
    return RosArmConfig(
        output_mode=output_mode,
        action_name=f"{node.get_parameter('controller_name').value}/follow_joint_trajectory",
        max_image_age_s=float(node.get_parameter("max_image_age_s").value),
        max_clock_skew_s=float(node.get_parameter("max_clock_skew_s").value),
        settle_timeout_s=float(node.get_parameter("settle_timeout_s").value),
        verifier_name=node.resolve_service_name(service) if service else "",
    )


def connect_arm(
    node: Node,
    sensors: SensorCache,
    callback_group: CallbackGroup,
    on_image: Callable[[Image], None],
    output_mode: str,
    model_input: Callable[[np.ndarray], np.ndarray],
) -> ConnectedArm:
    """Subscribe to ``image_raw`` (``on_image``) and ``joint_states`` (into ``sensors``),
    make the controller's action client and hold publisher and the verifier client, and the
    ``RosArm`` over them. Sensor data is best-effort keep-last, commands reliable."""
    image_sub = node.create_subscription(
        Image, "image_raw", on_image, sensor_qos(5), callback_group=callback_group
    )
    sensors.joint_states = LatestMessage(node, JointState, "joint_states", sensor_qos(1))
    controller = node.get_parameter("controller_name").value
    hold_pub = node.create_publisher(
        JointTrajectoryMsg, f"{controller}/joint_trajectory", command_qos()
    )
    fjt = SafeActionClient(
        node,
        FollowJointTrajectory,
        f"{controller}/follow_joint_trajectory",
        callback_group=callback_group,
    )
    service = node.get_parameter("success_service").value
    verifier = (
        node.create_client(Trigger, service, callback_group=callback_group) if service else None
    )
    config = arm_config(node, output_mode)
    arm = RosArm(node, sensors, config, fjt, hold_pub, verifier, model_input)
    return ConnectedArm(arm, image_sub, hold_pub, fjt)


def receive_image(
    node: Node,
    msg: Image,
    sensors: SensorCache,
    media: GoalMedia,
    recording: GoalRecording,
) -> None:
    """A camera message into the sensor cache, the goal's executed video and its recording;
    one that cannot be converted is counted and logged (throttled), never raised."""
    try:
        rgb = image_to_rgb8(msg)
    except ImageConversionError as exc:
        sensors.reject_image(str(exc))
        node.get_logger().error(f"rejected image_raw message: {exc}", throttle_duration_sec=2.0)
        return
    sensors.put_image(rgb, msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec)
    media.add_camera_frame(rgb)
    recording.image(msg)
