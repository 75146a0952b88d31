"""The SO-101 graph's description: config/bringup_so101.yaml, launch/so101.launch.py and
``executor-bringup so101 --port`` (no ROS graph is started here)."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from test_launcher_config import _Context, _stub_launch_packages

from executor_bringup.bringup_config import join_namespace, load_bringup_config
from executor_bringup.launcher import BringupConfigError, with_port

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "bringup_so101.yaml"


def test_so101_graph_loads_with_the_lerobot_arm_and_declared_scripts() -> None:
    config = load_bringup_config(CONFIG)
    names = [n.name for n in config.nodes]
    assert names[0] == "lerobot_arm_node"
    assert {"camera_node", "safety_node", "executor_node"} <= set(names)
    assert "sim_arm_node" not in names
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for spec in config.nodes:
        assert scripts.get(spec.executable) == f"executor_bringup.{spec.name}:main", spec
        for params in spec.parameter_files:
            data = yaml.safe_load(params.read_text())
            assert "ros__parameters" in data[f"/**/{spec.name}"], params


def test_lerobot_arm_parameters_match_the_node() -> None:
    data = yaml.safe_load((REPO / "config" / "lerobot_arm_node.yaml").read_text())
    params = data["/**/lerobot_arm_node"]["ros__parameters"]
    source = (REPO / "executor_bringup" / "lerobot_arm_node.py").read_text()
    declared = set(re.findall(r'declare_parameter\("(\w+)"', source))
    assert set(params) == declared
    assert params["torque_policy"] in ("hold", "torque_off")


def test_port_goes_to_the_nodes_that_have_one(tmp_path) -> None:
    device = tmp_path / "ttyACM0"
    device.touch()
    config = with_port(load_bringup_config(CONFIG), str(device))
    assert config.node("lerobot_arm_node").overrides["port"] == str(device)
    assert "port" not in config.node("safety_node").overrides
    with pytest.raises(BringupConfigError, match="no such device"):
        with_port(load_bringup_config(CONFIG), str(tmp_path / "missing"))
    sim = load_bringup_config(REPO / "config" / "bringup_sim.yaml")
    with pytest.raises(BringupConfigError, match="no node of graph 'sim' has a 'port'"):
        with_port(sim, str(device))


def test_dry_run_prints_the_port_on_the_arm_node(tmp_path) -> None:
    device = tmp_path / "ttyUSB0"
    device.touch()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "executor_bringup.launcher",
            "so101",
            "--port",
            str(device),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    arm_line = next(line for line in proc.stdout.splitlines() if line.startswith("lerobot_arm"))
    assert f"-p port:={device}" in arm_line
    assert "executor-lerobot-arm-node" in arm_line


def test_launch_file_starts_the_nodes_of_its_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    _stub_launch_packages(monkeypatch)
    launch_file = runpy.run_path(str(REPO / "launch" / "so101.launch.py"))
    assert launch_file["GRAPH"] == "so101"
    *arguments, opaque = launch_file["generate_launch_description"]().args[0]
    assert [a.args for a in arguments] == [("namespace",), ("policy",)]
    nodes = opaque.kwargs["function"](_Context(), *opaque.kwargs["args"])
    config = load_bringup_config(CONFIG)
    assert [n.kwargs["name"] for n in nodes] == [spec.name for spec in config.nodes]
    for node, spec in zip(nodes, config.nodes, strict=True):
        assert node.kwargs["executable"] == spec.executable
        assert node.kwargs["namespace"] == join_namespace("/arm1", spec.namespace)
