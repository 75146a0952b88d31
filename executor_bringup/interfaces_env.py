"""Is the ROS side importable here? A pure check (no rclpy import) with a useful answer.

In the pip world our interface packages exist only after ``scripts/build_interfaces.py``
(run by ``scripts/install.sh``); in a colcon world they come from the workspace and the
ROS install. Either way a missing one should say how to get it, not surface later as a
bare ``ModuleNotFoundError`` inside a node process.
"""

from __future__ import annotations

import importlib.util
import logging

logger = logging.getLogger(__name__)

# module -> how to get it
REQUIRED_MODULES: dict[str, str] = {
    "rclpy": "pip install -e '.[ros]' (pip world) or source /opt/ros/<distro>/setup.bash",
    "executor_interfaces": "scripts/install.sh (builds it into .venv) or colcon build",
    "control_msgs": "scripts/install.sh (builds the subset into .venv) or "
    "apt install ros-<distro>-control-msgs",
    "sensor_msgs": "pip install -e '.[ros]'",
    "trajectory_msgs": "pip install -e '.[ros]'",
}


class InterfacesMissingError(RuntimeError):
    """A ROS module the nodes import cannot be found; the message says how to install it."""


def missing_ros_modules() -> dict[str, str]:
    """``{module: hint}`` for each required module that cannot be found (nothing imported)."""
    return {
        name: hint
        for name, hint in REQUIRED_MODULES.items()
        if importlib.util.find_spec(name) is None
    }


def require_ros_modules() -> None:
    """Raise :class:`InterfacesMissingError` naming every missing module and its fix."""
    missing = missing_ros_modules()
    if missing:
        lines = [f"  {name}: {hint}" for name, hint in missing.items()]
        raise InterfacesMissingError(
            "ROS modules needed by the nodes are missing:\n" + "\n".join(lines)
        )
