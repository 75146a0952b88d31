"""executor-bringup as a process supervisor, with test-double node executables.

The doubles stand in for the real node console scripts (which need the simulator and
models): small Python scripts that record their argv/env/pid, then sleep, exit with a
code, or ignore signals. The launcher itself runs for real, as a subprocess, and gets
real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

DOUBLE_NODE = textwrap.dedent(
    """\
    #!{python}
    # Test double of a node executable: records how it was started, then behaves as told.
    import json, os, signal, subprocess, sys, time
    record = os.path.join(os.environ["DOUBLE_RECORD_DIR"], "{name}")
    state = {{"pid": os.getpid(), "argv": sys.argv[1:],
              "domain_id": os.environ.get("ROS_DOMAIN_ID"),
              "fastdds_transports": os.environ.get("FASTDDS_BUILTIN_TRANSPORTS")}}
    def write(**extra):
        state.update(extra)
        with open(record + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(record + ".tmp", record + ".json")
    def on_int(signum, frame):
        write(signal=signum)
        sys.exit(0)
    behaviour = "{behaviour}"
    if behaviour == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, on_int)
    if behaviour == "spawn":  # a grandchild of the launcher, in this node's process group
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        state["child_pid"] = child.pid
    write()
    if behaviour == "exit3":
        time.sleep(0.3)
        sys.exit(3)
    while True:
        time.sleep(0.05)
    """
)


def _make_double(bin_dir: Path, name: str, behaviour: str) -> None:
    path = bin_dir / name
    path.write_text(DOUBLE_NODE.format(python=sys.executable, name=name, behaviour=behaviour))
    path.chmod(0o755)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    bin_dir, record_dir, cfg_dir = tmp_path / "bin", tmp_path / "records", tmp_path / "cfg"
    for d in (bin_dir, record_dir, cfg_dir):
        d.mkdir()
    _make_double(bin_dir, "double-sleeper-node", "sleep")
    _make_double(bin_dir, "double-other-sleeper-node", "sleep")
    _make_double(bin_dir, "double-exit3-node", "exit3")
    _make_double(bin_dir, "double-stubborn-node", "stubborn")
    _make_double(bin_dir, "double-spawner-node", "spawn")
    (cfg_dir / "a.yaml").write_text("/**/alpha:\n  ros__parameters:\n    rate_hz: 5.0\n")
    return {"bin": bin_dir, "records": record_dir, "cfg": cfg_dir}


def _write_config(world: dict[str, Path], nodes: list[dict]) -> Path:
    path = world["cfg"] / "bringup_test.yaml"
    path.write_text(yaml.safe_dump({"graph": "test", "nodes": nodes}))
    return path


def _env(world: dict[str, Path]) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{world['bin']}{os.pathsep}{env.get('PATH', '')}"
    env["DOUBLE_RECORD_DIR"] = str(world["records"])
    env.pop("ROS_DOMAIN_ID", None)
    env.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    return env


def _launch(
    world: dict[str, Path], config: Path, *extra: str, env_extra: dict[str, str] | None = None
) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "executor_bringup.launcher", "sim", "--config", str(config)]
    return subprocess.Popen(
        [*cmd, *extra],
        env={**_env(world), **(env_extra or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_records(world: dict[str, Path], names: list[str], timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        paths = [world["records"] / f"{n}.json" for n in names]
        if all(p.is_file() for p in paths):
            return {n: json.loads(p.read_text()) for n, p in zip(names, paths, strict=True)}
        time.sleep(0.05)
    raise AssertionError(f"node doubles {names} did not start within {timeout_s} s")


def _gone(pid: int) -> bool:
    """Exited (a zombie counts: an orphan's reaper may be slow or absent)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def test_ctrl_c_stops_every_node_and_exits_zero(world: dict[str, Path]) -> None:
    config = _write_config(
        world,
        [
            {
                "name": "alpha",
                "executable": "double-sleeper-node",
                "parameters": ["a.yaml"],
                "remappings": {"image_raw": "camera/image_raw"},
            },
            {"name": "beta", "executable": "double-other-sleeper-node", "namespace": "arm"},
        ],
    )
    proc = _launch(
        world,
        config,
        "--namespace",
        "/robot1",
        "--domain-id",
        "42",
        "--set",
        "alpha.rate_hz=7.5",
        "--set",
        "beta.label=hello",
    )
    try:
        started = _wait_records(world, ["double-sleeper-node", "double-other-sleeper-node"])
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    alpha, beta = started["double-sleeper-node"], started["double-other-sleeper-node"]
    assert alpha["argv"] == [
        "--ros-args",
        "-r",
        "__node:=alpha",
        "-r",
        "__ns:=/robot1",
        "--params-file",
        str((world["cfg"] / "a.yaml").resolve()),
        "-p",
        "rate_hz:=7.5",
        "-r",
        "image_raw:=camera/image_raw",
    ]
    assert beta["argv"] == [
        "--ros-args",
        "-r",
        "__node:=beta",
        "-r",
        "__ns:=/robot1/arm",
        "-p",
        "label:=hello",
    ]
    assert alpha["domain_id"] == beta["domain_id"] == "42"
    # not set by the user: the stack's one default, the same for every node
    assert alpha["fastdds_transports"] == beta["fastdds_transports"] == "DEFAULT"
    for name, record in started.items():
        assert _gone(record["pid"]), f"{name} (pid {record['pid']}) still running"
        final = json.loads((world["records"] / f"{name}.json").read_text())
        assert final.get("signal") == signal.SIGINT, f"{name} was not stopped with SIGINT"


def test_a_users_fastdds_transport_choice_is_kept(world: dict[str, Path]) -> None:
    config = _write_config(world, [{"name": "alpha", "executable": "double-sleeper-node"}])
    proc = _launch(world, config, env_extra={"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"})
    try:
        started = _wait_records(world, ["double-sleeper-node"])
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert started["double-sleeper-node"]["fastdds_transports"] == "UDPv4"


def test_sigterm_also_exits_zero(world: dict[str, Path]) -> None:
    config = _write_config(world, [{"name": "alpha", "executable": "double-sleeper-node"}])
    proc = _launch(world, config)
    started = _wait_records(world, ["double-sleeper-node"])
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert _gone(started["double-sleeper-node"]["pid"])


def test_a_dying_node_fails_the_launch_and_is_named(world: dict[str, Path]) -> None:
    config = _write_config(
        world,
        [
            {"name": "alpha", "executable": "double-sleeper-node"},
            {"name": "crasher", "executable": "double-exit3-node"},
        ],
    )
    proc = _launch(world, config)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "node 'crasher' exited with code 3" in err
    survivor = json.loads((world["records"] / "double-sleeper-node.json").read_text())
    assert _gone(survivor["pid"]), "the healthy node was left running"
    assert survivor.get("signal") == signal.SIGINT


def test_a_node_ignoring_signals_is_killed_after_the_timeout(world: dict[str, Path]) -> None:
    config = _write_config(world, [{"name": "mule", "executable": "double-stubborn-node"}])
    proc = _launch(world, config, "--shutdown-timeout-s", "0.3")
    started = _wait_records(world, ["double-stubborn-node"])
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "sending SIGKILL" in err
    assert _gone(started["double-stubborn-node"]["pid"])
    assert time.monotonic() - t0 < 10.0


@pytest.mark.parametrize(
    ("nodes", "extra", "message"),
    [
        (
            [{"name": "alpha", "executable": "double-sleeper-node", "colour": "red"}],
            [],
            "unknown keys ['colour']",
        ),
        (
            [{"name": "alpha", "executable": "double-sleeper-node", "parameters": ["nope.yaml"]}],
            [],
            "parameter file 'nope.yaml' not found",
        ),
        (
            [{"name": "alpha", "executable": "no-such-node-executable"}],
            [],
            "node 'alpha': executable 'no-such-node-executable' not found",
        ),
        (
            [{"name": "9lives", "executable": "double-sleeper-node"}],
            [],
            "node name '9lives' is not a valid ROS node name",
        ),
        (
            [
                {"name": "a", "executable": "double-sleeper-node"},
                {"name": "a", "executable": "double-sleeper-node"},
            ],
            [],
            "duplicate node names ['a']",
        ),
        (
            [{"name": "alpha", "executable": "double-sleeper-node"}],
            ["--set", "gamma.x=1"],
            "no node 'gamma'",
        ),
        (
            [{"name": "alpha", "executable": "double-sleeper-node"}],
            ["--set", "alpha=1"],
            "--set expects node.param=value, got 'alpha=1'",
        ),
        (
            [{"name": "alpha", "executable": "double-sleeper-node"}],
            ["--domain-id", "400"],
            "--domain-id must be in 0..232, got 400",
        ),
        (
            [{"name": "alpha", "executable": "double-sleeper-node"}],
            ["--namespace", "/bad-ns"],
            "bad namespace '/bad-ns'",
        ),
    ],
)
def test_bad_config_is_a_clear_usage_error(
    world: dict[str, Path], nodes: list[dict], extra: list[str], message: str
) -> None:
    proc = _launch(world, _write_config(world, nodes), *extra)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert message in err
    assert not list(world["records"].iterdir()), "a node was started despite the bad config"


def test_missing_config_file_is_named(world: dict[str, Path]) -> None:
    proc = _launch(world, world["cfg"] / "absent.yaml")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "bringup config not found" in err
    assert "absent.yaml" in err


def test_nodes_die_with_a_killed_launcher(world: dict[str, Path]) -> None:
    """kill -9 of the launcher (no handler runs) still ends every node: a plain one, one
    that ignores SIGINT and SIGTERM, and one whose own child would otherwise live on."""
    config = _write_config(
        world,
        [
            {"name": "alpha", "executable": "double-sleeper-node"},
            {"name": "mule", "executable": "double-stubborn-node"},
            {"name": "parent", "executable": "double-spawner-node"},
        ],
    )
    proc = _launch(world, config, "--shutdown-timeout-s", "1.0")
    names = ["double-sleeper-node", "double-stubborn-node", "double-spawner-node"]
    try:
        started = _wait_records(world, names)
    finally:
        proc.kill()  # SIGKILL: the launcher gets no chance to stop anything
        proc.wait()
    pids = {n: r["pid"] for n, r in started.items()}
    pids["grandchild"] = started["double-spawner-node"]["child_pid"]
    deadline = time.monotonic() + 8.0
    while time.monotonic() < deadline and not all(_gone(p) for p in pids.values()):
        time.sleep(0.05)
    alive = {n: p for n, p in pids.items() if not _gone(p)}
    for pid in alive.values():  # leave nothing behind, even when failing
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"still running after the launcher was killed: {alive}"
    _, err = proc.communicate(timeout=10)
    assert "the launcher died; stopping its 3 nodes" in err


def test_sighup_stops_every_node_and_exits_zero(world: dict[str, Path]) -> None:
    config = _write_config(world, [{"name": "alpha", "executable": "double-sleeper-node"}])
    proc = _launch(world, config)
    started = _wait_records(world, ["double-sleeper-node"])
    proc.send_signal(signal.SIGHUP)  # the terminal closed
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert _gone(started["double-sleeper-node"]["pid"])
    assert json.loads((world["records"] / "double-sleeper-node.json").read_text())["signal"] == 2
