"""ros2 launch executor_bringup robot.launch.py [namespace:=/arm1]

The nodes of config/bringup_robot.yaml; executor_bringup.launch_graph builds them (for every
graph alike).
"""

from executor_bringup.launch_graph import graph_launch_description
from launch import LaunchDescription

GRAPH = "robot"


def generate_launch_description() -> LaunchDescription:
    return graph_launch_description(GRAPH)
