"""Starting policy_node in place of executor_node from the same bringup YAML, and its
parameter file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context
from ros_helpers import REPO, fresh_domain_id

from executor_bringup import launcher
from executor_bringup.bringup_config import BringupConfigError, load_bringup_config
from executor_bringup.policy_node import PARAMETERS, PolicyNode

SIM_YAML = REPO / "config" / "bringup_sim.yaml"


def test_the_sim_graph_runs_executor_node_unless_a_policy_is_given() -> None:
    config = load_bringup_config(SIM_YAML)
    assert [n.name for n in config.nodes] == ["sim_arm_node", "safety_node", "executor_node"]
    spec = config.policy_node
    assert spec is not None
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[spec.executable] == "executor_bringup.policy_node:main"
    with_policy = config.with_overrides(
        ["executor_node.robot_description_path=/calibrated.yaml", "policy=ckpt/policy_sim"]
    )
    assert [n.name for n in with_policy.nodes] == ["sim_arm_node", "safety_node", "policy_node"]
    node = with_policy.node("policy_node")
    assert node.overrides["policy_path"] == "ckpt/policy_sim"
    assert node.overrides["success_service"] == "task_success"  # the sim's verifier
    assert node.overrides["autostart"] is True
    assert node.overrides["robot_description_path"] == "/calibrated.yaml"  # carried over
    # the other nodes are untouched; a later --set reaches policy_node
    assert with_policy.node("safety_node") == config.node("safety_node")
    again = with_policy.with_overrides(["policy=other", "policy_node.max_chunks=5"])
    assert again.node("policy_node").overrides["policy_path"] == "other"
    assert again.node("policy_node").overrides["max_chunks"] == 5


def test_the_policy_key_of_the_yaml_swaps_at_load(tmp_path: Path) -> None:
    data = yaml.safe_load(SIM_YAML.read_text())
    data["policy"] = "checkpoints/policy_sim"
    for entry in [*data["nodes"], data["policy_node"]]:
        entry["parameters"] = [str(REPO / "config" / p) for p in entry["parameters"]]
    path = tmp_path / "bringup_sim.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_bringup_config(path)
    assert "executor_node" not in {n.name for n in config.nodes}
    assert config.node("policy_node").overrides["policy_path"] == "checkpoints/policy_sim"


def test_a_policy_without_a_policy_node_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bringup.yaml"
    path.write_text(yaml.safe_dump({"graph": "g", "nodes": [{"name": "a", "executable": "x"}]}))
    with pytest.raises(BringupConfigError, match="no policy_node entry: cannot start policy 'p'"):
        load_bringup_config(path).with_overrides(["policy=p"])
    with pytest.raises(BringupConfigError, match="give a policy checkpoint folder"):
        load_bringup_config(SIM_YAML).with_overrides(["policy="])


def test_the_launcher_starts_policy_node_instead(capsys: pytest.CaptureFixture[str]) -> None:
    status = launcher.main(["sim", "--set", "policy=/ckpt/pretrained_model", "--dry-run"])
    assert status == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert set(lines) == {"sim_arm_node", "safety_node", "policy_node"}
    assert "executor-policy-node --ros-args -r __node:=policy_node" in lines["policy_node"]
    assert "-p policy_path:=/ckpt/pretrained_model" in lines["policy_node"]
    assert "config/policy_node.yaml" in lines["policy_node"]


@pytest.mark.ros
def test_params_file_matches_declared_parameters() -> None:
    path = REPO / "config" / "policy_node.yaml"
    data = yaml.safe_load(path.read_text())
    assert list(data) == ["/**/policy_node"]
    params = data["/**/policy_node"]["ros__parameters"]
    assert set(params) == set(PARAMETERS)  # every parameter documented, nothing else
    context = Context()
    rclpy.init(
        context=context,
        domain_id=fresh_domain_id(),
        args=["--ros-args", "--params-file", str(path)],
    )
    try:
        node = PolicyNode(namespace="/params_test", context=context)  # autostart: false
        try:
            for key, value in params.items():
                assert node.get_parameter(key).value == value, key
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
