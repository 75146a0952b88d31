"""ros2 launch executor_bringup robot.launch.py [namespace:=/arm1]

Thin on purpose: the graph is described once in config/bringup_robot.yaml and read through
executor_bringup.bringup_config, the same loader `executor-bringup robot` uses (the pip
world has no launch package).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from executor_bringup.bringup_config import join_namespace, load_bringup_config
from launch import LaunchContext, LaunchDescription

GRAPH = "robot"


def _nodes(context: LaunchContext) -> list[Node]:
    share = Path(get_package_share_directory("executor_bringup"))
    config = load_bringup_config(share / "config" / f"bringup_{GRAPH}.yaml")
    namespace = LaunchConfiguration("namespace").perform(context) or config.namespace
    return [
        Node(
            package="executor_bringup",
            executable=spec.executable,
            name=spec.name,
            namespace=join_namespace(namespace, spec.namespace),
            parameters=[*(str(p) for p in spec.parameter_files), dict(spec.overrides)],
            remappings=list(spec.remappings),
            output="screen",
        )
        for spec in config.nodes
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "namespace", default_value="", description="put every node under this namespace"
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
