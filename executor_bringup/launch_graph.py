"""The one implementation of ``launch/sim.launch.py`` and ``launch/robot.launch.py``.

``ros2 launch executor_bringup <graph>.launch.py [namespace:=/arm1] [policy:=PATH]`` starts
the nodes that ``config/bringup_<graph>.yaml`` (in the package's share folder) lists (with
``policy``: ``policy_node`` on that LeRobot checkpoint in place of ``executor_node``, as
``executor-bringup <graph> --set policy=PATH``), read through
:mod:`executor_bringup.bringup_config`: the same loader ``executor-bringup <graph>`` uses
(the pip world has no launch package). Only the launch files import this module.
"""

from __future__ import annotations

import logging
from pathlib import Path

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from executor_bringup.bringup_config import join_namespace, load_bringup_config
from launch import LaunchContext, LaunchDescription

logger = logging.getLogger(__name__)

PACKAGE = "executor_bringup"


def graph_launch_description(graph: str) -> LaunchDescription:
    """``namespace`` and ``policy`` arguments and the nodes of ``config/bringup_<graph>.yaml``."""
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "namespace", default_value="", description="put every node under this namespace"
            ),
            DeclareLaunchArgument(
                "policy",
                default_value="",
                description="a LeRobot policy checkpoint: policy_node replaces executor_node",
            ),
            OpaqueFunction(function=_graph_nodes, args=[graph]),
        ]
    )


def _graph_nodes(context: LaunchContext, graph: str) -> list[Node]:
    """One launch_ros Node per node of the graph's YAML, under the launch namespace."""
    share = Path(FindPackageShare(PACKAGE).perform(context))
    config = load_bringup_config(share / "config" / f"bringup_{graph}.yaml")
    if policy := LaunchConfiguration("policy").perform(context):
        config = config.with_policy(policy)
    namespace = LaunchConfiguration("namespace").perform(context) or config.namespace
    return [
        Node(
            package=PACKAGE,
            executable=spec.executable,
            name=spec.name,
            namespace=join_namespace(namespace, spec.namespace),
            parameters=[*(str(p) for p in spec.parameter_files), dict(spec.overrides)],
            remappings=list(spec.remappings),
            output="screen",
        )
        for spec in config.nodes
    ]
