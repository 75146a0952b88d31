"""static_tf_node: the hand-eye result reaches a late /tf_static subscriber exactly."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from rclpy.parameter import Parameter
from ros_helpers import REPO, RosSession, fresh_domain_id, wait_for
from tf2_msgs.msg import TFMessage

from calibration.handeye_io import load_handeye_result
from executor_bringup.qos import status_qos
from executor_bringup.static_tf_node import TF_STATIC_TOPIC, StaticTfNode

pytestmark = pytest.mark.ros

# A rotation of 30 deg about a tilted axis, and a translation in metres.
HALF = math.radians(30) / 2
AXIS = np.array([1.0, 2.0, 2.0]) / 3.0
QUAT_XYZW = [*(float(a) * math.sin(HALF) for a in AXIS), math.cos(HALF)]
TRANSLATION_M = [0.0125, -0.031, 0.0467]


def _write_handeye(path: Path, setup: str = "eye_in_hand") -> Path:
    data = {
        "parameters": {
            "name": "test",
            "calibration_type": setup,
            "robot_base_frame": "base_link",
            "robot_effector_frame": "gripper_link",
            "tracking_base_frame": "camera_optical_frame",
            "tracking_marker_frame": "calibration_target",
            "freehand_robot_movement": False,
        },
        "transform": {
            "translation": dict(zip("xyz", TRANSLATION_M, strict=True)),
            "rotation": dict(zip("xyzw", QUAT_XYZW, strict=True)),
        },
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("setup", "parent"), [("eye_in_hand", "gripper_link"), ("eye_on_base", "base_link")]
)
def test_late_subscriber_receives_the_exact_transform(
    tmp_path: Path, setup: str, parent: str
) -> None:
    path = _write_handeye(tmp_path / "handeye.yaml", setup)
    session = RosSession(fresh_domain_id())
    try:
        node = session.add(
            StaticTfNode(
                context=session.context,
                parameter_overrides=[Parameter("handeye_path", value=str(path))],
            )
        )
        assert node.published is not None
        # Subscribe only after the single publish: transient local must replay it.
        got: list[TFMessage] = []
        listener = session.node("listener")
        listener.create_subscription(TFMessage, TF_STATIC_TOPIC, got.append, status_qos())
        wait_for(lambda: len(got) >= 1, 10, "the latched /tf_static message")
        assert len(got[0].transforms) == 1
        tf = got[0].transforms[0]
        assert (tf.header.frame_id, tf.child_frame_id) == (parent, "camera_optical_frame")
        tr, rot = tf.transform.translation, tf.transform.rotation
        # The file's values, through load_handeye_result's 4x4 and back.
        expected = load_handeye_result(path).parent_from_child
        assert [tr.x, tr.y, tr.z] == expected[:3, 3].tolist()
        assert np.allclose([tr.x, tr.y, tr.z], TRANSLATION_M, atol=1e-15)
        assert np.allclose([rot.x, rot.y, rot.z, rot.w], QUAT_XYZW, atol=1e-12)
        assert tf.header.stamp.sec > 0
    finally:
        session.close()


def test_frame_overrides_and_refusals(tmp_path: Path) -> None:
    path = _write_handeye(tmp_path / "handeye.yaml")
    session = RosSession(fresh_domain_id())
    try:
        node = session.add(
            StaticTfNode(
                context=session.context,
                parameter_overrides=[
                    Parameter("handeye_path", value=str(path)),
                    Parameter("child_frame", value="scene_camera"),
                ],
            )
        )
        assert node.published.child_frame == "scene_camera"
        assert node.published.parent_frame == "gripper_link"
        with pytest.raises(ValueError, match="both 'gripper_link'"):
            StaticTfNode(
                context=session.context,
                parameter_overrides=[
                    Parameter("handeye_path", value=str(path)),
                    Parameter("child_frame", value="gripper_link"),
                ],
            )
        idle = StaticTfNode(context=session.context)  # empty path: warns, publishes nothing
        assert idle.published is None
        idle.destroy_node()
    finally:
        session.close()


def test_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "executor_bringup.static_tf_node",
            "--ros-args",
            "-p",
            f"handeye_path:={missing}",
        ],
        env={**os.environ, "ROS_DOMAIN_ID": str(fresh_domain_id())},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"hand-eye result not found: {missing}" in proc.stderr
