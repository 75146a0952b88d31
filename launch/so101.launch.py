"""ros2 launch executor_bringup so101.launch.py [namespace:=/arm1]

The nodes of config/bringup_so101.yaml (the SO-101 through LeRobot); set the arm's port in
config/lerobot_arm_node.yaml or use ``executor-bringup so101 --port /dev/ttyACM0``.
executor_bringup.launch_graph builds them (for every graph alike).
"""

from executor_bringup.launch_graph import graph_launch_description
from launch import LaunchDescription

GRAPH = "so101"


def generate_launch_description() -> LaunchDescription:
    return graph_launch_description(GRAPH)
