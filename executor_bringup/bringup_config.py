"""The bringup YAML: the ROS graph described once, for the launcher and for ros2 launch.

``config/bringup_sim.yaml`` and ``config/bringup_robot.yaml`` list the nodes to start::

    graph: sim                       # a label for logs
    namespace: ""                    # every node goes under it (--namespace overrides)
    nodes:
      - name: sim_arm_node           # ROS node name (-r __node:=...)
        executable: executor-sim-arm-node   # console script (pip) / ros2 run executable
        namespace: ""                # optional, appended to the graph namespace
        parameters: [sim_arm_node.yaml]     # ros__parameters files, relative to this YAML
        overrides: {autostart: true}        # optional single parameters (-p name:=value)
        remappings: {image_raw: camera/image_raw}   # optional, from: to
    policy: ""                       # optional: a LeRobot policy checkpoint folder; when
                                     # set, policy_node replaces executor_node
    policy_node: {name: policy_node, executable: executor-policy-node, ...}  # optional

``policy`` (in the YAML, or ``--set policy=PATH`` on the launcher's command line) starts
the graph's ``policy_node`` entry in place of its ``executor_node``, with the parameter
``policy_path`` set to PATH: the same graph driven by a LeRobot policy instead of the
video model and the IDM (:meth:`BringupConfig.with_policy`).

This module is pure (no rclpy): ``executor-bringup`` turns a :class:`BringupConfig` into
``--ros-args`` command lines, and ``launch_graph`` (behind ``launch/*.launch.py``) into
``launch_ros`` Node actions.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

# ROS names: letters, digits, underscores; must not start with a digit.
_NODE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAMESPACE_RE = re.compile(r"^(/?[A-Za-z_][A-Za-z0-9_]*)*/?$")
_TOPIC_RE = re.compile(r"^[~/]?[A-Za-z_{][A-Za-z0-9_/{}~]*$")
_EXECUTABLE_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
GRAPH_KEYS = {"graph", "namespace", "nodes", "policy", "policy_node"}
POLICY_KEY = "policy"  # graph-level: a policy checkpoint folder -> policy_node
REPLACED_BY_POLICY = "executor_node"
POLICY_PATH_PARAM = "policy_path"
CARRIED_TO_POLICY = ("robot_description_path",)  # executor_node overrides policy_node keeps
NODE_KEYS = {"name", "executable", "namespace", "parameters", "overrides", "remappings"}
ParamValue = bool | int | float | str | list


class BringupConfigError(ValueError):
    """The bringup YAML (or an override) is not valid; the message names the bad value."""


def join_namespace(*parts: str) -> str:
    """``join_namespace("/robot1", "arm") == "/robot1/arm"``; empty parts are skipped."""
    pieces = [p.strip("/") for p in parts if p and p.strip("/")]
    return "/" + "/".join(pieces)


def format_param_value(value: ParamValue) -> str:
    """A parameter value as ``-p name:=value`` expects it (YAML syntax)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # Quote strings that YAML would otherwise read as another type ("1", "true", "").
        parsed = yaml.safe_load(value) if value else None
        return value if isinstance(parsed, str) else f"'{value}'"
    if isinstance(value, list):
        return "[" + ", ".join(format_param_value(v) for v in value) + "]"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        # YAML reads "1e-05" as a string; "1.0e-05" is a float.
        return text.replace("e", ".0e") if "e" in text and "." not in text else text
    return repr(value)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    executable: str
    namespace: str = ""
    parameter_files: tuple[Path, ...] = ()  # absolute paths
    overrides: dict[str, ParamValue] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()  # (from, to), in file order

    def __post_init__(self) -> None:
        if not _NODE_NAME_RE.match(self.name):
            raise BringupConfigError(f"node name {self.name!r} is not a valid ROS node name")
        if not _EXECUTABLE_RE.match(self.executable):
            raise BringupConfigError(
                f"node {self.name!r}: executable {self.executable!r} is not a plain command name"
            )
        if self.namespace and not _NAMESPACE_RE.match(self.namespace):
            raise BringupConfigError(f"node {self.name!r}: bad namespace {self.namespace!r}")
        for key in self.overrides:
            if not _PARAM_NAME_RE.match(key):
                raise BringupConfigError(f"node {self.name!r}: bad parameter name {key!r}")
        for src, dst in self.remappings:
            for topic in (src, dst):
                if not _TOPIC_RE.match(topic):
                    raise BringupConfigError(
                        f"node {self.name!r}: bad remapping name {topic!r} in {src!r}: {dst!r}"
                    )

    def ros_arguments(self, graph_namespace: str = "") -> list[str]:
        """The ``--ros-args ...`` tail of this node's command line."""
        args = [
            "--ros-args",
            "-r",
            f"__node:={self.name}",
            "-r",
            f"__ns:={join_namespace(graph_namespace, self.namespace)}",
        ]
        for path in self.parameter_files:
            args += ["--params-file", str(path)]
        for key, value in self.overrides.items():
            args += ["-p", f"{key}:={format_param_value(value)}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


@dataclass(frozen=True)
class BringupConfig:
    graph: str
    nodes: tuple[NodeSpec, ...]
    namespace: str = ""
    source: Path | None = None  # the YAML it was read from
    policy_node: NodeSpec | None = None  # started in place of executor_node with a policy

    def __post_init__(self) -> None:
        if not self.nodes:
            raise BringupConfigError(f"graph {self.graph!r} has no nodes")
        names = [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise BringupConfigError(f"graph {self.graph!r}: duplicate node names {dupes!r}")
        if self.namespace and not _NAMESPACE_RE.match(self.namespace):
            raise BringupConfigError(f"graph {self.graph!r}: bad namespace {self.namespace!r}")

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise BringupConfigError(
            f"no node {name!r} in graph {self.graph!r}; nodes: {[n.name for n in self.nodes]}"
        )

    def with_namespace(self, namespace: str) -> BringupConfig:
        return replace(self, namespace=namespace)

    def with_policy(self, path: str) -> BringupConfig:
        """``policy_node`` (``policy_path: path``) in place of ``executor_node``."""
        spec = self.policy_node
        if spec is None:
            raise BringupConfigError(
                f"graph {self.graph!r} has no policy_node entry: cannot start policy {path!r}"
            )
        nodes = {n.name: n for n in self.nodes}
        if spec.name in nodes:  # already swapped in: a new path
            spec = nodes[spec.name]
        elif REPLACED_BY_POLICY in nodes:
            old = nodes[REPLACED_BY_POLICY]
            carried = {k: v for k, v in old.overrides.items() if k in CARRIED_TO_POLICY}
            spec = replace(spec, overrides={**spec.overrides, **carried})
        else:
            raise BringupConfigError(
                f"graph {self.graph!r} has no {REPLACED_BY_POLICY!r} for policy_node to replace"
            )
        spec = replace(spec, overrides={**spec.overrides, POLICY_PATH_PARAM: path})
        swapped = tuple(
            spec if n.name in (REPLACED_BY_POLICY, spec.name) else n for n in self.nodes
        )
        return replace(self, nodes=swapped)

    def with_overrides(self, assignments: list[str]) -> BringupConfig:
        """Apply ``node.param=value`` strings (value parsed as YAML: 3 -> int, true -> bool)
        and ``policy=PATH`` (:meth:`with_policy`), in order."""
        config = self
        for text in assignments:
            config = config._with_override(text)
        return config

    def _with_override(self, text: str) -> BringupConfig:
        """One ``node.param=value`` (or ``policy=PATH``)."""
        target, eq, raw = text.partition("=")
        if target == POLICY_KEY:
            if not raw:
                raise BringupConfigError(f"--set {text!r}: give a policy checkpoint folder")
            return self.with_policy(raw)
        node_name, dot, param = target.partition(".")
        if not eq or not dot or not node_name or not param:
            raise BringupConfigError(f"--set expects node.param=value, got {text!r}")
        nodes = {n.name: n for n in self.nodes}
        spec = nodes.get(node_name)
        if spec is None:
            raise BringupConfigError(
                f"--set {text!r}: no node {node_name!r} in graph {self.graph!r}; "
                f"nodes: {sorted(nodes)}"
            )
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            raise BringupConfigError(f"--set {text!r}: value is not valid YAML: {exc}") from None
        if value is None or isinstance(value, dict):
            raise BringupConfigError(f"--set {text!r}: unsupported value {raw!r}")
        nodes[node_name] = replace(spec, overrides={**spec.overrides, param: value})
        return replace(self, nodes=tuple(nodes[n.name] for n in self.nodes))


def _expect(data: Any, kind: type, where: str) -> Any:
    if not isinstance(data, kind):
        raise BringupConfigError(f"{where}: expected a {kind.__name__}, got {data!r}")
    return data


def _node_from_dict(data: Any, base_dir: Path, where: str) -> NodeSpec:
    data = _expect(data, dict, where)
    unknown = sorted(set(data) - NODE_KEYS)
    if unknown:
        raise BringupConfigError(f"{where}: unknown keys {unknown}; known: {sorted(NODE_KEYS)}")
    for key in ("name", "executable"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise BringupConfigError(
                f"{where}: {key!r} must be a non-empty string, got {data.get(key)!r}"
            )
    where = f"{where} ({data['name']})"
    files = data.get("parameters") or []
    if isinstance(files, str):
        files = [files]
    paths = []
    for entry in _expect(files, list, f"{where}.parameters"):
        path = (base_dir / _expect(entry, str, f"{where}.parameters[]")).resolve()
        if not path.is_file():
            raise BringupConfigError(f"{where}: parameter file {entry!r} not found at {path}")
        paths.append(path)
    overrides = dict(_expect(data.get("overrides") or {}, dict, f"{where}.overrides"))
    remaps = _expect(data.get("remappings") or {}, dict, f"{where}.remappings")
    return NodeSpec(
        name=data["name"],
        executable=data["executable"],
        namespace=str(data.get("namespace") or ""),
        parameter_files=tuple(paths),
        overrides=overrides,
        remappings=tuple((str(k), str(v)) for k, v in remaps.items()),
    )


def load_bringup_config(path: str | Path) -> BringupConfig:
    """Read and validate a bringup YAML. Parameter files resolve relative to it."""
    path = Path(path)
    if not path.is_file():
        raise BringupConfigError(f"bringup config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BringupConfigError(f"{path}: not valid YAML: {exc}") from None
    data = _expect(data, dict, str(path))
    unknown = sorted(set(data) - GRAPH_KEYS)
    if unknown:
        raise BringupConfigError(f"{path}: unknown keys {unknown}; known: {sorted(GRAPH_KEYS)}")
    nodes = _expect(data.get("nodes"), list, f"{path}: nodes")
    specs = tuple(
        _node_from_dict(item, path.parent, f"{path}: nodes[{i}]") for i, item in enumerate(nodes)
    )
    policy_node = data.get("policy_node")
    config = BringupConfig(
        graph=str(data.get("graph") or path.stem),
        nodes=specs,
        namespace=str(data.get("namespace") or ""),
        source=path.resolve(),
        policy_node=None
        if policy_node is None
        else _node_from_dict(policy_node, path.parent, f"{path}: policy_node"),
    )
    policy = data.get(POLICY_KEY) or ""
    return config.with_policy(str(_expect(policy, str, f"{path}: policy"))) if policy else config


def default_config_path(graph: str) -> Path:
    """``config/bringup_<graph>.yaml`` from the source tree, else the installed share dir."""
    name = f"bringup_{graph}.yaml"
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "config" / name]
    # Installed by setup.py data_files (colcon or a non-editable pip install).
    candidates.append(Path(sys.prefix) / "share" / "executor_bringup" / "config" / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BringupConfigError(
        f"no bringup config for graph {graph!r}; looked in {[str(c) for c in candidates]}"
    )
