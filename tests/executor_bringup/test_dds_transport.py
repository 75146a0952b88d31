"""The one Fast DDS transport default of the stack (the shipped profile), that a user's
choice wins, and over real DDS: camera-sized images cross processes under the default, and
a stock participant (Fast DDS's builtin DEFAULT, no profile) discovers ours."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from ros_helpers import REPO, RosSession, fresh_domain_id, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import String

from executor_bringup.dds_transport import (
    apply_default_transports,
    default_profile_path,
    select_transports,
)
from executor_bringup.launcher import node_environment
from executor_bringup.qos import command_qos, sensor_qos

PROFILE = REPO / "config" / "fastdds_profile.xml"
FRAME_BYTES = 640 * 480 * 3  # rgb8


@pytest.mark.parametrize("unset", [{}, {"FASTDDS_BUILTIN_TRANSPORTS": ""}])
def test_unset_or_empty_becomes_the_shipped_profile(unset: dict[str, str]) -> None:
    env = dict(unset)
    assert apply_default_transports(env) == f"profile {PROFILE}"
    assert env == {
        "FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT",  # disabled by the profile; same everywhere
        "FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE),
    }
    assert default_profile_path() == PROFILE


def test_fast_dds_2_distros_get_the_old_variable_too() -> None:
    env = {"ROS_DISTRO": "jazzy"}
    apply_default_transports(env)
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == env["FASTDDS_DEFAULT_PROFILES_FILE"]


def test_the_users_builtin_transports_are_kept_without_the_profile() -> None:
    env = {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
    assert apply_default_transports(env) == "builtin LARGE_DATA"
    assert env == {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}


@pytest.mark.parametrize(
    "name", ["FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"]
)
def test_the_users_profile_file_is_kept(name: str) -> None:
    env = {name: "/etc/my_dds.xml"}
    assert apply_default_transports(env) == "profile /etc/my_dds.xml"
    assert env == {name: "/etc/my_dds.xml", "FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}


def test_without_a_profile_file_the_builtin_default_applies(caplog, monkeypatch) -> None:
    monkeypatch.setattr("executor_bringup.dds_transport.default_profile_path", lambda: None)
    env: dict[str, str] = {}
    assert apply_default_transports(env) == "builtin DEFAULT"
    assert env == {"FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}
    assert "fastdds_profile.xml not found" in caplog.text


def test_select_transports_replaces_what_was_set() -> None:
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/my_dds.xml", "PATH": "/bin"}
    assert select_transports(env, "large_data") == "builtin LARGE_DATA"
    assert env == {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA", "PATH": "/bin"}
    assert select_transports(env, "default") == f"profile {PROFILE}"
    assert select_transports(env, "fastdds_default") == "builtin DEFAULT"
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in env
    with pytest.raises(ValueError, match="'udp'"):
        select_transports(env, "udp")


def test_node_environment_adds_domain_and_transport_without_touching_the_base() -> None:
    base = {"PATH": "/bin"}
    env = node_environment(base, 7)
    assert env == {
        "PATH": "/bin",
        "ROS_DOMAIN_ID": "7",
        "FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT",
        "FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE),
    }
    assert base == {"PATH": "/bin"}
    assert "ROS_DOMAIN_ID" not in node_environment(base, None)


def test_the_profile_has_large_shared_memory_and_udp_for_discovery() -> None:
    profiles = ET.parse(PROFILE).getroot()[0]
    ns = {"p": profiles.tag.split("}")[0].strip("{")}
    transports = {
        t.findtext("p:transport_id", namespaces=ns): t
        for t in profiles.iterfind("p:transport_descriptors/p:transport_descriptor", ns)
    }
    kinds = {t.findtext("p:type", namespaces=ns): t for t in transports.values()}
    assert set(kinds) == {"SHM", "UDPv4"}
    assert int(kinds["SHM"].findtext("p:segment_size", namespaces=ns)) >= 8 * FRAME_BYTES
    (participant,) = profiles.iterfind("p:participant", ns)
    assert participant.get("is_default_profile") == "true"
    rtps = participant.find("p:rtps", ns)
    assert rtps.findtext("p:useBuiltinTransports", namespaces=ns) == "false"
    used = [e.text for e in rtps.iterfind("p:userTransports/p:transport_id", ns)]
    assert sorted(used) == sorted(transports)


PUBLISHER = textwrap.dedent(
    """\
    import sys, time
    import numpy as np, rclpy
    from sensor_msgs.msg import Image
    from std_msgs.msg import String
    from executor_bringup.dds_transport import apply_default_transports
    from executor_bringup.qos import command_qos, sensor_qos
    apply_default_transports()
    rclpy.init()
    node = rclpy.create_node("transport_test_publisher")
    kind, count = sys.argv[1], int(sys.argv[2])
    if kind == "image":
        pub = node.create_publisher(Image, "transport_test", sensor_qos(5))
    else:
        pub = node.create_publisher(String, "transport_test", command_qos())
    end = time.monotonic() + 60
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(1.0)  # the subscriber matches us too
    for i in range(count):
        if kind == "image":
            data = np.full((480, 640, 3), i, np.uint8)
            pub.publish(Image(height=480, width=640, encoding="rgb8", step=640 * 3,
                              data=data.tobytes()))
        else:
            pub.publish(String(data=f"hello {i}"))
    time.sleep(3.0)  # let best-effort samples drain before the participant goes
    """
)


def _publisher(kind: str, count: int, domain_id: int, env: dict[str, str]) -> subprocess.Popen:
    env = {**env, "ROS_DOMAIN_ID": str(domain_id), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-c", PUBLISHER, kind, str(count)]
    return subprocess.Popen(cmd, env=env, cwd=REPO)


def _receive(kind: str, count: int, env: dict[str, str]) -> list:
    """Start the publisher process, receive in this process (the stack's transports)."""
    session = RosSession(fresh_domain_id())
    got: list = []
    node = session.node("transport_test_subscriber")
    if kind == "image":
        node.create_subscription(Image, "transport_test", got.append, sensor_qos(5))
    else:
        node.create_subscription(String, "transport_test", got.append, command_qos())
    proc = _publisher(kind, count, session.domain_id, env)
    try:
        wait_for(lambda: len(got) >= count or proc.poll() is not None, 20, "the samples")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        session.close()
    assert proc.returncode == 0
    return got


@pytest.mark.ros
def test_a_burst_of_camera_frames_crosses_processes_under_the_default() -> None:
    """5 frames of 640x480 rgb8 back to back, best effort keep-last 5: all arrive through
    the profile's shared memory (Fast DDS's builtin DEFAULT, a 512 KiB segment, falls back
    to UDP fragments and loses most of such a burst)."""
    if os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") != str(PROFILE):
        pytest.skip("this test process runs with the user's own Fast DDS transport choice")
    got = _receive("image", 5, dict(os.environ))  # ros_helpers applied the default
    assert [int(np.frombuffer(m.data, np.uint8)[0]) for m in got] == [0, 1, 2, 3, 4]
    assert all(len(m.data) == FRAME_BYTES for m in got)


@pytest.mark.ros
def test_a_stock_participant_without_the_profile_discovers_ours() -> None:
    stock = {k: v for k, v in os.environ.items() if "PROFILES_FILE" not in k}
    stock["FASTDDS_BUILTIN_TRANSPORTS"] = "DEFAULT"  # what a stock `ros2 topic` uses
    got = _receive("string", 3, stock)
    assert [m.data for m in got] == ["hello 0", "hello 1", "hello 2"]
