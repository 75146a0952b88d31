"""config/<node>.yaml: every key is a parameter the node declares, and the node reads it."""

from __future__ import annotations

import pytest
import rclpy
import yaml
from rclpy.context import Context
from ros_helpers import REPO, fresh_domain_id

from executor_bringup.camera_node import CameraNode
from executor_bringup.executor_node import ExecutorNode
from executor_bringup.lerobot_arm_node import LeRobotArmNode
from executor_bringup.policy_node import PolicyNode
from executor_bringup.safety_node import SafetyNode
from executor_bringup.sim_arm_node import SimArmNode
from executor_bringup.static_tf_node import StaticTfNode

NODES = {
    "camera_node": CameraNode,
    "executor_node": ExecutorNode,
    "lerobot_arm_node": LeRobotArmNode,
    "policy_node": PolicyNode,
    "safety_node": SafetyNode,
    "sim_arm_node": SimArmNode,
    "static_tf_node": StaticTfNode,
}


@pytest.mark.ros
@pytest.mark.parametrize("name", sorted(NODES))
def test_params_file_matches_declared_parameters(name: str) -> None:
    path = REPO / "config" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    assert list(data) == [f"/**/{name}"]
    params = data[f"/**/{name}"]["ros__parameters"]
    context = Context()
    rclpy.init(
        context=context,
        domain_id=fresh_domain_id(),
        args=["--ros-args", "--params-file", str(path)],
    )
    try:
        node = NODES[name](namespace="/params_test", context=context)
        try:
            for key, value in params.items():
                assert node.has_parameter(key), f"{path.name}: {key!r} is not declared"
                assert node.get_parameter(key).value == value, key
            if hasattr(node, "shutdown_worker"):
                node.shutdown_worker()
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
