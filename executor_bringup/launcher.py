"""``executor-bringup``: start the ROS graph of a bringup YAML without ``ros2 launch``.

The pip world has no ``launch`` package, so this small supervisor does the part we need:

    executor-bringup sim|robot|so101 [--config F] [--namespace NS] [--domain-id N]
                     [--robot-description YAML] [--port DEVICE] [--set node.param=value ...]
                     [--shutdown-timeout-s S] [--dry-run]

Each node runs as its own process (``<executable> --ros-args -r __node:=... -r __ns:=...
--params-file ... -p ... -r from:=to``) in its own process group, so a terminal Ctrl-C
reaches only the launcher, which then stops the nodes in an orderly way: SIGINT, then
SIGTERM and finally SIGKILL when a node ignores the previous one for
``--shutdown-timeout-s``. Exit status: 0 after Ctrl-C / SIGTERM / SIGHUP; 1 when a node
died on its own (its name and exit code are reported, the others are stopped); 2 for a bad
command line or config.

Nodes die with the launcher, however it dies (``kill -9`` included; ``ros2 launch`` leaves
them running): every node gets SIGTERM from the kernel when the launcher goes (Linux
``PR_SET_PDEATHSIG``, ``process_exit.die_with_parent``), and a small watchdog process
(:class:`OrphanGuard`, forked before the nodes, in its own process group) then signals each
node's whole process group, SIGTERM and after ``--shutdown-timeout-s`` SIGKILL, so that
neither a node ignoring SIGTERM nor anything a node started outlives the launcher.

Environment of the nodes: ours, plus ``ROS_DOMAIN_ID`` from ``--domain-id`` and
``FASTDDS_BUILTIN_TRANSPORTS`` (the stack's one default, see
``executor_bringup.dds_transport``) unless already set, so that all processes agree.

``--robot-description`` points every node that has a ``robot_description_path``
parameter (in its parameter files) at one description, e.g. the calibrated copy written
by ``executor-calibrate-joints``; ``--set`` given for one node still wins. ``--port``
does the same for the ``port`` parameter (the SO-101 graph's ``lerobot_arm_node``: the
arm's serial port, which must exist).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import yaml

from executor_bringup.bringup_config import (
    BringupConfig,
    BringupConfigError,
    NodeSpec,
    default_config_path,
    load_bringup_config,
)
from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.interfaces_env import InterfacesMissingError, require_ros_modules
from executor_bringup.process_exit import die_with_parent
from executor_core.config_cli import OneLineArgumentParser, cli_main
from executor_core.robot_description import RobotDescription

logger = logging.getLogger(__name__)

ROBOT_DESCRIPTION_PARAM = "robot_description_path"
PORT_PARAM = "port"
GRAPHS = ("sim", "robot", "so101")

EXIT_OK = 0
EXIT_NODE_DIED = 1
POLL_PERIOD_S = 0.05
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class RunningNode:
    name: str
    argv: list[str]
    process: subprocess.Popen


def resolve_executable(name: str, node: str) -> str:
    """A console script on PATH, else beside this interpreter (venv not activated)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise BringupConfigError(
            f"node {node!r}: executable {name!r} not found on PATH or in "
            f"{Path(sys.executable).parent} (is the project installed: scripts/install.sh?)"
        )
    return found


def build_commands(config: BringupConfig) -> list[tuple[str, list[str]]]:
    """(node name, argv) for every node, executables resolved."""
    return [
        (
            spec.name,
            [resolve_executable(spec.executable, spec.name), *spec.ros_arguments(config.namespace)],
        )
        for spec in config.nodes
    ]


def node_environment(base: dict[str, str], domain_id: int | None) -> dict[str, str]:
    """The nodes' environment: ``base`` plus the domain id and the Fast DDS transports."""
    env = dict(base)
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    apply_default_transports(env)  # see dds_transport: all processes must agree
    return env


def declares_parameter(spec: NodeSpec, param: str) -> bool:
    """Whether any of the node's parameter files sets ``param`` (under ros__parameters)."""
    for path in spec.parameter_files:
        data = yaml.safe_load(path.read_text()) or {}
        for section in data.values() if isinstance(data, dict) else ():
            params = section.get("ros__parameters") if isinstance(section, dict) else None
            if isinstance(params, dict) and param in params:
                return True
    return param in spec.overrides


def with_robot_description(config: BringupConfig, path: Path) -> BringupConfig:
    """Point every node with a ``robot_description_path`` parameter at ``path``."""
    path = path.expanduser().resolve()
    try:
        RobotDescription.from_yaml(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BringupConfigError(
            f"--robot-description {str(path)!r} does not load: {exc}"
        ) from None
    nodes = [n.name for n in config.nodes if declares_parameter(n, ROBOT_DESCRIPTION_PARAM)]
    if not nodes:
        raise BringupConfigError(
            f"--robot-description: no node of graph {config.graph!r} has a "
            f"{ROBOT_DESCRIPTION_PARAM!r} parameter"
        )
    return config.with_overrides([f"{n}.{ROBOT_DESCRIPTION_PARAM}={path}" for n in nodes])


def with_port(config: BringupConfig, port: str) -> BringupConfig:
    """Point every node with a ``port`` parameter at the serial device ``port``."""
    if not Path(port).exists():
        raise BringupConfigError(f"--port {port!r}: no such device (is the arm plugged in?)")
    nodes = [n.name for n in config.nodes if declares_parameter(n, PORT_PARAM)]
    if not nodes:
        raise BringupConfigError(
            f"--port: no node of graph {config.graph!r} has a {PORT_PARAM!r} parameter"
        )
    return config.with_overrides([f"{n}.{PORT_PARAM}={port}" for n in nodes])


def _stop_groups(pgids: list[int], timeout_s: float) -> None:
    """SIGTERM every process group, SIGKILL what is left after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in pgids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + timeout_s
        while pgids and time.monotonic() < deadline:
            time.sleep(POLL_PERIOD_S)
            pgids = [g for g in pgids if _group_alive(g)]
        if not pgids:
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):  # gone (or the id reused by another user)
        return False
    return True


class OrphanGuard:
    """A watchdog process that outlives the launcher and stops the nodes if it dies.

    Forked before any node (so it holds nothing of theirs) into its own process group (a
    Ctrl-C or a signal to the launcher's group does not reach it). The launcher tells it
    each node's process group over a pipe; an orderly shutdown ends with ``done``. When the
    pipe closes without ``done``, the launcher was killed: the guard stops every group
    (:func:`_stop_groups`) and exits.
    """

    def __init__(self, shutdown_timeout_s: float) -> None:
        read_fd, write_fd = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the guard
            try:
                os.close(write_fd)
                _guard_main(read_fd, shutdown_timeout_s)
            finally:
                os._exit(0)
        os.close(read_fd)
        self._pipe = os.fdopen(write_fd, "w", buffering=1)

    def watch(self, pgid: int) -> None:
        with contextlib.suppress(BrokenPipeError):
            self._pipe.write(f"+{pgid}\n")

    def release(self) -> None:
        """The nodes are stopped: end the guard."""
        with contextlib.suppress(BrokenPipeError):
            self._pipe.write("done\n")
            self._pipe.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _guard_main(read_fd: int, shutdown_timeout_s: float) -> None:
    os.setpgid(0, 0)
    for sig in (signal.SIGINT, signal.SIGHUP):  # the terminal's, meant for the launcher
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    pgids: list[int] = []
    with os.fdopen(read_fd) as pipe:
        for line in pipe:
            if line.strip() == "done":
                return
            if line.startswith("+"):
                pgids.append(int(line[1:]))
    print(f"executor-bringup: the launcher died; stopping its {len(pgids)} nodes", file=sys.stderr)
    _stop_groups(pgids, shutdown_timeout_s)


class Supervisor:
    """Starts the nodes, watches them, and stops them all on a signal or a death."""

    def __init__(
        self, commands: list[tuple[str, list[str]]], env: dict[str, str], shutdown_timeout_s: float
    ) -> None:
        if shutdown_timeout_s <= 0:
            raise BringupConfigError(f"shutdown timeout must be > 0 s, got {shutdown_timeout_s!r}")
        self._commands = commands
        self._env = env
        self._timeout_s = shutdown_timeout_s
        self._nodes: list[RunningNode] = []
        self._stop_signal: int | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop_signal is None:
            logger.info(
                "received %s, stopping %d nodes", signal.Signals(signum).name, len(self._nodes)
            )
        self._stop_signal = signum

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        guard = OrphanGuard(self._timeout_s)
        try:
            return self._run(guard)
        finally:
            self._stop_all()
            guard.release()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self, guard: OrphanGuard) -> int:
        launcher_pid = os.getpid()
        for name, argv in self._commands:
            if self._stop_signal is not None:
                return EXIT_OK
            logger.info("starting %s: %s", name, shlex.join(argv))
            # Own process group: Ctrl-C in the terminal reaches only us, and killing the
            # group also reaches anything the node started. SIGTERM when we die.
            proc = subprocess.Popen(
                argv,
                env=self._env,
                process_group=0,
                preexec_fn=lambda: die_with_parent(launcher_pid),
            )
            guard.watch(proc.pid)
            self._nodes.append(RunningNode(name, argv, proc))
        while True:
            if self._stop_signal is not None:
                return EXIT_OK
            for node in self._nodes:
                code = node.process.poll()
                if code is not None:
                    how = (
                        f"was killed by {signal.Signals(-code).name}"
                        if code < 0
                        else f"exited with code {code}"
                    )
                    # print, not log: this line must survive any --log-level
                    print(f"executor-bringup: node {node.name!r} {how}", file=sys.stderr)
                    logger.info("stopping the other nodes")
                    return EXIT_NODE_DIED
            time.sleep(POLL_PERIOD_S)

    def _signal_group(self, node: RunningNode, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(node.process.pid, sig)

    def _wait_all(self, nodes: list[RunningNode]) -> list[RunningNode]:
        deadline = time.monotonic() + self._timeout_s
        alive = [n for n in nodes if n.process.poll() is None]
        while alive and time.monotonic() < deadline:
            time.sleep(POLL_PERIOD_S)
            alive = [n for n in alive if n.process.poll() is None]
        return alive

    def _stop_all(self) -> None:
        # Reverse start order: the nodes started last depend on the ones started first.
        alive = [n for n in reversed(self._nodes) if n.process.poll() is None]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if not alive:
                break
            if sig != signal.SIGINT:
                logger.warning(
                    "nodes %s ignored the last signal for %.1f s; sending %s",
                    [n.name for n in alive],
                    self._timeout_s,
                    sig.name,
                )
            for node in alive:
                self._signal_group(node, sig)
            alive = self._wait_all(alive)
        # The group may still hold grandchildren of a node that exited by itself.
        for node in self._nodes:
            self._signal_group(node, signal.SIGKILL)
            node.process.wait()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineArgumentParser(
        prog="executor-bringup",
        description="Start the executor stack's ROS graph (one process per node).",
    )
    parser.add_argument("graph", choices=GRAPHS, help="which graph: config/bringup_<graph>.yaml")
    parser.add_argument("--config", type=Path, help="a bringup YAML instead of the default")
    parser.add_argument("--namespace", help="put every node under this namespace, e.g. /arm1")
    parser.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID for all nodes (0-232)")
    parser.add_argument(
        "--robot-description",
        type=Path,
        help="robot description YAML for every node that reads one (e.g. the calibrated copy)",
    )
    parser.add_argument(
        "--port", help="the arm's serial port for the nodes that drive it, e.g. /dev/ttyACM0"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override one node parameter (repeatable)",
    )
    parser.add_argument(
        "--shutdown-timeout-s",
        type=float,
        default=10.0,
        help="wait this long after SIGINT (then SIGTERM, then SIGKILL)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


@cli_main("executor-bringup", InterfacesMissingError)
def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="[executor-bringup] %(levelname)s %(message)s"
    )
    if args.domain_id is not None and not 0 <= args.domain_id <= 232:
        raise BringupConfigError(f"--domain-id must be in 0..232, got {args.domain_id!r}")
    config = load_bringup_config(args.config or default_config_path(args.graph))
    if args.namespace is not None:
        config = config.with_namespace(args.namespace)
    if args.robot_description is not None:
        config = with_robot_description(config, args.robot_description)
    if args.port is not None:
        config = with_port(config, args.port)
    config = config.with_overrides(args.set)
    # validate the namespace once more through the dataclass
    config = BringupConfig(config.graph, config.nodes, config.namespace, config.source)
    commands = build_commands(config)
    env = node_environment(dict(os.environ), args.domain_id)
    if args.dry_run:
        for name, cmd in commands:
            print(f"{name}: {shlex.join(cmd)}")
        return EXIT_OK
    # Fail here, once and with the fix, rather than in every node process.
    require_ros_modules()
    supervisor = Supervisor(commands, env, args.shutdown_timeout_s)
    logger.info(
        "graph %r from %s, %d nodes, namespace %r",
        config.graph,
        config.source,
        len(config.nodes),
        config.namespace or "/",
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
