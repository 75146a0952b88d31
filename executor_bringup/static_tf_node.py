"""static_tf_node: publish the hand-eye calibration as a static transform on ``/tf_static``.

Reads the result of ``executor-calibrate-handeye`` (easy_handeye2-style YAML, parameter
``handeye_path``) through ``calibration.handeye_io.load_handeye_result`` and latches one
``tf2_msgs/TFMessage``: eye-in-hand gives ``<effector frame> -> <camera frame>``,
eye-on-base ``<base frame> -> <camera frame>``. This is what ``tf2_ros
static_transform_publisher`` would publish with the command line in the calibration
report, without a ``tf2_ros`` install.

QoS as tf2's static broadcaster: reliable, transient local, depth 1, so a listener that
starts later still gets the transform. ``/tf_static`` is absolute (as tf2 listens there);
remap it in the bringup YAML if a robot keeps its tf under a namespace.

An empty ``handeye_path`` publishes nothing and says so (the robot graph lists this node
before anyone has calibrated); a path that does not load stops the node (exit 2).
"""

from __future__ import annotations

import logging

import numpy as np
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from calibration.handeye_io import StaticTransform, load_handeye_result
from calibration.transforms import quaternion_xyzw_from_rotation
from executor_bringup.node_main import run_node
from executor_bringup.qos import status_qos

logger = logging.getLogger(__name__)

TF_STATIC_TOPIC = "/tf_static"


def transform_msg(static: StaticTransform, stamp: object) -> TransformStamped:
    """``parent_from_child`` (4x4, metres) as a TransformStamped (parent = header frame)."""
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = static.parent_frame
    msg.child_frame_id = static.child_frame
    t = static.parent_from_child[:3, 3]
    q = quaternion_xyzw_from_rotation(static.parent_from_child[:3, :3])
    tr, rot = msg.transform.translation, msg.transform.rotation
    tr.x, tr.y, tr.z = (float(v) for v in t)
    rot.x, rot.y, rot.z, rot.w = (float(v) for v in q)
    return msg


class StaticTfNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("static_tf_node", **kwargs)
        self.declare_parameter("handeye_path", "")
        self.declare_parameter("parent_frame", "")  # empty: the file's frame
        self.declare_parameter("child_frame", "")  # empty: the file's tracking_base_frame
        path = self.get_parameter("handeye_path").value
        self.published: StaticTransform | None = None
        self._pub = self.create_publisher(TFMessage, TF_STATIC_TOPIC, status_qos())
        if not path:
            self.get_logger().warning(
                "handeye_path is empty: no camera transform published (run "
                "executor-calibrate-handeye and set static_tf_node.handeye_path)"
            )
            return
        static = load_handeye_result(path)  # FileNotFoundError / ValueError name the file
        parent = self.get_parameter("parent_frame").value or static.parent_frame
        child = self.get_parameter("child_frame").value or static.child_frame
        if parent == child:
            raise ValueError(f"parent and child frame are both {parent!r}")
        if not np.all(np.isfinite(static.parent_from_child)):
            raise ValueError(f"{path}: transform has non-finite values")
        static = StaticTransform(parent, child, static.parent_from_child, static.calibration_type)
        self._pub.publish(
            TFMessage(transforms=[transform_msg(static, self.get_clock().now().to_msg())])
        )
        self.published = static
        t = static.parent_from_child[:3, 3]
        self.get_logger().info(
            f"published {static.calibration_type} transform {parent!r} -> {child!r} "
            f"(t = [{t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}] m) from {path}"
        )


def main(args: list[str] | None = None) -> None:
    run_node(StaticTfNode, args=args)


if __name__ == "__main__":
    main()
