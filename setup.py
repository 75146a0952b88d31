"""Thin setup.py for colcon's ament_python build; pyproject.toml holds everything else.

Name, version, packages, dependencies and console scripts (executor-bringup and the
node executables) come from pyproject.toml, the single source of truth for pip and colcon
alike. This file only adds what an ament package must install besides the Python code:
the ament index marker, package.xml, and the launch/ and config/ directories under
share/executor_bringup (where `ros2 launch executor_bringup sim.launch.py` finds them).
"""

from pathlib import Path

from setuptools import setup

PACKAGE = "executor_bringup"
HERE = Path(__file__).resolve().parent


def _files(pattern: str) -> list[str]:
    return sorted(str(p.relative_to(HERE)) for p in HERE.glob(pattern) if p.is_file())


setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _files("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", _files("config/*.yaml") + _files("config/*.xml")),
        (f"share/{PACKAGE}/config/robots", _files("config/robots/*.yaml")),
    ],
)
