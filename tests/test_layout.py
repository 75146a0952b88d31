"""Repository layout rules: layers that import only downward, a pure core without ROS,
and packaging that matches the code."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The layers, bottom up (docs/ARCHITECTURE.md). A package imports its own layer's packages
# (without a loop) and the layers below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("executor_core",),  # foundation: types, I/O, safety, retiming, policy, goal runner
    # world, models, and the drivers of real robots
    (
        "executor_sim",
        "inverse_dynamics",
        "video_models",
        "calibration",
        "robot_drivers",
        "visuomotor_policy",
        "execution_critic",
    ),
    ("self_distillation",),  # the method: proposal, demos, judges, distill, RL, benchmark
    ("executor_bringup",),  # the ROS nodes
)
OUR_PACKAGES = {package for layer in LAYERS for package in layer}
PURE_PACKAGES = tuple(p for layer in LAYERS[:-1] for p in layer)
# Top-level modules that mean "ROS": the client library, launch, and every interface
# package we use or might reach for.
ROS_MODULES = {
    "rclpy",
    "rcl_interfaces",
    "launch",
    "launch_ros",
    "ament_index_python",
    "rosidl_runtime_py",
    "action_msgs",
    "builtin_interfaces",
    "control_msgs",
    "executor_interfaces",
    "geometry_msgs",
    "lifecycle_msgs",
    "sensor_msgs",
    "std_msgs",
    "std_srvs",
    "trajectory_msgs",
    "unique_identifier_msgs",
    "rosgraph_msgs",
    "cv_bridge",
}
# Python imports of executor_bringup -> the rosdep key package.xml must list.
PYTHON_ROSDEP_KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml"}


def _layer(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def _our_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(our top-level package, line, inside a function or class body) for each import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in OUR_PACKAGES:
                found.append((top, node.lineno, id(node) in nested))
    return found


def _package_sources() -> dict[str, list[Path]]:
    return {p: sorted((REPO / p).rglob("*.py")) for p in sorted(OUR_PACKAGES)}


def test_every_package_belongs_to_a_layer() -> None:
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert on_disk == OUR_PACKAGES, f"packages {sorted(on_disk)} vs layers {sorted(OUR_PACKAGES)}"


def test_layers_import_only_downward() -> None:
    upward = []
    for package, sources in _package_sources().items():
        for path in sources:
            for imported, line, _ in _our_imports(path):
                if _layer(imported) > _layer(package):
                    where = f"{path.relative_to(REPO)}:{line}"
                    upward.append(
                        f"{where} ({package}, layer {_layer(package) + 1}) imports "
                        f"{imported} (layer {_layer(imported) + 1})"
                    )
    assert not upward, "imports up a layer:\n" + "\n".join(upward)


def test_no_import_loop_between_packages() -> None:
    graph: dict[str, set[str]] = {p: set() for p in OUR_PACKAGES}
    for package, sources in _package_sources().items():
        for path in sources:
            graph[package].update(i for i, _, _ in _our_imports(path) if i != package)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or reaches(nxt, goal, seen | {nxt}) for nxt in graph[start] - seen)

    loops = sorted(p for p in OUR_PACKAGES if reaches(p, p, set()))
    assert not loops, f"packages in an import loop: {loops} ({graph})"


def test_no_function_level_imports_of_our_own_modules() -> None:
    # A function-level import of our own code hides a loop between modules; heavy third
    # party libraries may still be imported lazily.
    nested = [
        f"{path.relative_to(REPO)}:{line} imports {imported}"
        for sources in _package_sources().values()
        for path in sources
        for imported, line, inside in _our_imports(path)
        if inside
    ]
    assert not nested, "function-level imports of our modules:\n" + "\n".join(nested)


def _imported_top_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):  # also imports inside functions
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_packages_never_import_ros(package: str) -> None:
    sources = sorted((REPO / package).rglob("*.py"))
    assert sources, f"{package}/ has no Python files"
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_top_modules(path) & ROS_MODULES)
        for path in sources
        if _imported_top_modules(path) & ROS_MODULES
    }
    assert not offenders, f"ROS imports in pure code: {offenders}"


def test_pure_packages_import_with_rclpy_blocked() -> None:
    # A fresh interpreter in which importing rclpy (or any ROS module) raises, then every
    # module of the pure packages is imported.
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, pkgutil, sys
        BLOCKED = {sorted(ROS_MODULES)!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"pure code imported ROS module {{name!r}}")
        sys.meta_path.insert(0, Block())
        for top in {PURE_PACKAGES!r}:
            pkg = importlib.import_module(top)
            for info in pkgutil.walk_packages(pkg.__path__, prefix=top + "."):
                importlib.import_module(info.name)
        assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        print("ok")
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok"), proc.stdout[-3000:]


def _manifest() -> ET.Element:
    return ET.parse(REPO / "package.xml").getroot()


def test_package_xml_is_ament_python_executor_bringup() -> None:
    root = _manifest()
    assert root.get("format") == "3"
    assert root.findtext("name") == "executor_bringup"
    assert root.findtext("export/build_type") == "ament_python"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert root.findtext("version") == version
    assert (REPO / "resource" / "executor_bringup").is_file()
    setup_cfg = (REPO / "setup.cfg").read_text()
    assert "$base/lib/executor_bringup" in setup_cfg


def test_package_xml_lists_every_import_of_the_ros_side() -> None:
    exec_depends = {(el.text or "").strip() for el in _manifest().findall("exec_depend")}
    needed = {
        "rclpy",
        "sensor_msgs",
        "trajectory_msgs",
        "control_msgs",
        "executor_interfaces",
        "std_msgs",
        "std_srvs",
        "lifecycle_msgs",
        "python3-numpy",
        "python3-yaml",
    }
    for path in sorted((REPO / "executor_bringup").glob("*.py")):
        for module in _imported_top_modules(path):
            if module in ROS_MODULES - {"launch", "launch_ros", "cv_bridge"}:
                needed.add(module)
            elif module in PYTHON_ROSDEP_KEYS:
                needed.add(PYTHON_ROSDEP_KEYS[module])
    missing = sorted(needed - exec_depends)
    assert not missing, f"package.xml lacks <exec_depend> for {missing}"


def test_colcon_workspace_links_our_packages_but_not_the_control_msgs_subset() -> None:
    src = REPO / "ros2_ws" / "src"
    bringup, interfaces = src / "executor_bringup", src / "executor_interfaces"
    for link in (bringup, interfaces):
        assert link.is_symlink(), link
        assert not os.path.isabs(os.readlink(link)), f"{link} must be a relative link"
    assert bringup.resolve() == REPO
    assert interfaces.resolve() == REPO / "interfaces" / "executor_interfaces"
    assert (interfaces / "CMakeLists.txt").is_file()
    assert (interfaces / "package.xml").is_file()
    # A real ROS install provides control_msgs; our subset must never shadow it.
    names = {p.name for p in src.iterdir()}
    assert "control_msgs" not in names
    assert (REPO / "interfaces" / "control_msgs" / "COLCON_IGNORE").is_file()


def test_setup_py_installs_launch_and_config_into_share() -> None:
    tree = ast.parse((REPO / "setup.py").read_text())
    strings = {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }
    joined = " ".join(strings)
    for needle in (
        "launch/*.launch.py",
        "config/*.yaml",
        "share/ament_index/resource_index",
        "package.xml",
    ):
        assert needle in joined, f"setup.py data_files lacks {needle!r}"
    assert sorted((REPO / "launch").glob("*.launch.py")), "no launch files to install"


def test_pyproject_ships_every_python_package_directory() -> None:
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    tops = {pattern.rstrip("*") for pattern in include}
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert on_disk == tops, f"packages on disk {sorted(on_disk)} vs pyproject {sorted(tops)}"
