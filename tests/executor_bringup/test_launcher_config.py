"""The bringup YAML loader (pure) and the shipped graphs/launch files that use it."""

from __future__ import annotations

import ast
import runpy
import shlex
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest
import yaml

from executor_bringup.bringup_config import (
    BringupConfigError,
    NodeSpec,
    format_param_value,
    join_namespace,
    load_bringup_config,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("",), "/"),
        (("/robot1", "arm"), "/robot1/arm"),
        (("robot1/", "/arm/"), "/robot1/arm"),
        (("", "arm"), "/arm"),
    ],
)
def test_join_namespace(parts: tuple[str, ...], expected: str) -> None:
    assert join_namespace(*parts) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (0.25, "0.25"),
        ("cam", "cam"),
        ("1", "'1'"),
        ("true", "'true'"),
        ("", "''"),
        (["a", "b"], "[a, b]"),
        (1e-05, "1.0e-05"),
        (2.5e-07, "2.5e-07"),
        (float("inf"), ".inf"),
        ([1, 2.5], "[1, 2.5]"),
    ],
)
def test_format_param_value_keeps_the_type(value: object, text: str) -> None:
    assert format_param_value(value) == text
    # and ROS's YAML parsing of the text gives the value back
    assert yaml.safe_load(text) == (value if value != "" else "")


def test_ros_arguments_order_and_content(tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("{}")
    spec = NodeSpec(
        name="safety_node",
        executable="executor-safety-node",
        namespace="arm",
        parameter_files=(params,),
        overrides={"max_rate_hz": 10},
        remappings=(("a", "/b"),),
    )
    assert spec.ros_arguments("/r1") == [
        "--ros-args",
        "-r",
        "__node:=safety_node",
        "-r",
        "__ns:=/r1/arm",
        "--params-file",
        str(params),
        "-p",
        "max_rate_hz:=10",
        "-r",
        "a:=/b",
    ]


def test_overrides_are_typed_and_do_not_touch_other_nodes(tmp_path: Path) -> None:
    path = tmp_path / "bringup.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "graph": "g",
                "nodes": [
                    {"name": "a", "executable": "x", "overrides": {"keep": 1}},
                    {"name": "b", "executable": "y"},
                ],
            }
        )
    )
    config = load_bringup_config(path).with_overrides(["a.rate_hz=2.5", "a.name=cam", "b.on=true"])
    assert config.node("a").overrides == {"keep": 1, "rate_hz": 2.5, "name": "cam"}
    assert config.node("b").overrides == {"on": True}
    with pytest.raises(BringupConfigError, match="no node 'c'"):
        config.node("c")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list", "expected a dict"),
        ("graph: g\nnodes: []\n", "has no nodes"),
        ("graph: g\nnodes: {a: 1}\n", "expected a list"),
        ("nodes: [{name: a}]", "'executable'"),
        ("graph: g\nnodes: [{name: a, executable: 'rm -rf'}]", "not a plain command name"),
        (
            "graph: g\nnodes: [{name: a, executable: x, remappings: {'bad topic': b}}]",
            "bad remapping name 'bad topic'",
        ),
        ("nodes: [", "not valid YAML"),
    ],
)
def test_bad_yaml_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bringup.yaml"
    path.write_text(text)
    with pytest.raises(BringupConfigError, match=message.replace("[", r"\[")):
        load_bringup_config(path)


def _console_scripts() -> dict[str, str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("graph", ["sim", "robot"])
def test_shipped_graphs_load_and_point_at_declared_node_scripts(graph: str) -> None:
    config = load_bringup_config(REPO / "config" / f"bringup_{graph}.yaml")
    scripts = _console_scripts()
    assert {"safety_node", "executor_node"} <= {n.name for n in config.nodes}
    for spec in config.nodes:
        # console script executor-<x>-node -> executor_bringup.<x>_node:main
        assert scripts.get(spec.executable) == f"executor_bringup.{spec.name}:main", spec
        for params in spec.parameter_files:
            data = yaml.safe_load(params.read_text())
            # `/**/<name>:` matches the node in any namespace; a bare name does not.
            assert f"/**/{spec.name}" in data, f"{params} lacks the '/**/{spec.name}:' key"
            assert "ros__parameters" in data[f"/**/{spec.name}"]


def test_sim_graph_has_the_sim_arm_and_robot_graph_the_camera() -> None:
    sim = load_bringup_config(REPO / "config" / "bringup_sim.yaml")
    robot = load_bringup_config(REPO / "config" / "bringup_robot.yaml")
    assert "sim_arm_node" in {n.name for n in sim.nodes}
    assert "sim_arm_node" not in {n.name for n in robot.nodes}
    assert "camera_node" in {n.name for n in robot.nodes}


@pytest.mark.parametrize("graph", ["sim", "robot"])
def test_launch_files_are_thin_and_share_one_implementation(graph: str) -> None:
    source = (REPO / "launch" / f"{graph}.launch.py").read_text()
    tree = ast.parse(source)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert functions == {"generate_launch_description"}
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "executor_bringup.launch_graph" in imported
    assigns = {
        t.id: n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)
    }
    assert assigns.get("GRAPH") == graph


class _Recorded:
    """Stand-in for a launch / launch_ros class: keeps what it was built with."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args, self.kwargs = args, kwargs


class _Context:
    def __init__(self) -> None:
        self.launch_configurations = {"namespace": "/arm1", "policy": ""}


class _Share(_Recorded):
    def perform(self, _context: _Context) -> str:
        return str(REPO)  # the source tree is laid out like the installed share folder


class _Configuration(_Recorded):
    def perform(self, context: _Context) -> str:
        return context.launch_configurations[self.args[0]]


def _stub_launch_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """launch and launch_ros as far as executor_bringup.launch_graph uses them."""
    modules = {
        "launch": {"LaunchContext": _Context, "LaunchDescription": _Recorded},
        "launch.actions": {"DeclareLaunchArgument": _Recorded, "OpaqueFunction": _Recorded},
        "launch.substitutions": {"LaunchConfiguration": _Configuration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": _Recorded},
        "launch_ros.substitutions": {"FindPackageShare": _Share},
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "executor_bringup.launch_graph", raising=False)


@pytest.mark.parametrize("graph", ["sim", "robot"])
def test_launch_files_start_the_nodes_of_their_yaml(
    graph: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stub_launch_packages(monkeypatch)
    launch_file = runpy.run_path(str(REPO / "launch" / f"{graph}.launch.py"))
    *arguments, opaque = launch_file["generate_launch_description"]().args[0]
    assert [a.args for a in arguments] == [("namespace",), ("policy",)]
    nodes = opaque.kwargs["function"](_Context(), *opaque.kwargs["args"])
    config = load_bringup_config(REPO / "config" / f"bringup_{graph}.yaml")
    assert [n.kwargs["name"] for n in nodes] == [spec.name for spec in config.nodes]
    for node, spec in zip(nodes, config.nodes, strict=True):
        assert node.kwargs["package"] == "executor_bringup"
        assert node.kwargs["executable"] == spec.executable
        assert node.kwargs["namespace"] == join_namespace("/arm1", spec.namespace)
        assert node.kwargs["parameters"][:-1] == [str(f) for f in spec.parameter_files]


def test_the_policy_argument_starts_policy_node_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    _stub_launch_packages(monkeypatch)
    launch_file = runpy.run_path(str(REPO / "launch" / "sim.launch.py"))
    *_, opaque = launch_file["generate_launch_description"]().args[0]
    context = _Context()
    context.launch_configurations["policy"] = "outputs/policy/pretrained_model"
    nodes = opaque.kwargs["function"](context, *opaque.kwargs["args"])
    names = [n.kwargs["name"] for n in nodes]
    assert "policy_node" in names
    assert "executor_node" not in names
    policy_node = nodes[names.index("policy_node")]
    assert policy_node.kwargs["parameters"][-1]["policy_path"] == "outputs/policy/pretrained_model"


def _dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "executor_bringup.launcher", *args, "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def _param_of(dry_run_stdout: str, node: str, param: str) -> str | None:
    for line in dry_run_stdout.splitlines():
        if line.startswith(f"{node}: "):
            words = shlex.split(line.partition(": ")[2])
            values = [w.partition(":=")[2] for w in words if w.startswith(f"{param}:=")]
            return values[-1] if values else None
    raise AssertionError(f"node {node!r} not in the dry run: {dry_run_stdout}")


@pytest.mark.parametrize(
    ("graph", "readers", "others"),
    [
        ("sim", ["sim_arm_node", "safety_node", "executor_node"], []),
        ("robot", ["safety_node", "executor_node"], ["camera_node", "static_tf_node"]),
    ],
)
def test_robot_description_points_every_reader_at_the_calibrated_copy(
    tmp_path: Path, graph: str, readers: list[str], others: list[str]
) -> None:
    calibrated = tmp_path / "so101.calibrated.yaml"
    shutil.copy(REPO / "config" / "robots" / "so101.yaml", calibrated)
    proc = _dry_run(
        graph,
        "--robot-description",
        str(calibrated),
        "--set",
        "safety_node.robot_description_path=/elsewhere.yaml",
    )
    assert proc.returncode == 0, proc.stderr
    for node in readers:
        expected = "/elsewhere.yaml" if node == "safety_node" else str(calibrated)  # --set wins
        assert _param_of(proc.stdout, node, "robot_description_path") == expected, node
    for node in others:
        assert _param_of(proc.stdout, node, "robot_description_path") is None, node


def test_robot_description_that_does_not_load_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("joints: 3\n")
    proc = _dry_run("sim", "--robot-description", str(bad))
    assert proc.returncode == 2
    assert f"--robot-description '{bad}' does not load" in proc.stderr
    proc = _dry_run("sim", "--robot-description", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2
    assert "missing.yaml" in proc.stderr
