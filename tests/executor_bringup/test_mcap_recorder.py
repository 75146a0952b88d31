"""mcap_recorder: rosbag2-style definitions and QoS, atomic files, a writer that never
blocks."""

from __future__ import annotations

import array
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Duration
from executor_interfaces.action import ExecuteTask
from executor_interfaces.msg import SafetyStatus
from mcap.reader import make_reader
from mcap_ros2._dynamic import generate_dynamic
from mcap_ros2.decoder import DecoderFactory
from rclpy.duration import Duration as RclpyDuration
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from executor_bringup import mcap_recorder
from executor_bringup.goal_recording import RECORDED_QOS
from executor_bringup.mcap_recorder import (
    McapRecorder,
    message_definition,
    offered_qos_yaml,
    type_name,
)
from executor_bringup.qos import command_qos, sensor_qos, status_qos
from executor_bringup.recording_layout import ALL_TOPICS

RECORDED_TYPES = (
    Image,
    CameraInfo,
    JointState,
    JointTrajectory,
    SafetyStatus,
    ExecuteTask.Goal,
    ExecuteTask.Feedback,
    ExecuteTask.Result,
)


def _plain(value: object) -> object:
    """A comparable form of a field's value (sequences as lists; nested messages None)."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes | bytearray | list | tuple | array.array | np.ndarray):
        return [_plain(v) for v in value]
    return None


def _trajectory() -> JointTrajectory:
    point = JointTrajectoryPoint(positions=[0.1, 0.2], time_from_start=Duration(nanosec=5))
    return JointTrajectory(joint_names=["a", "b"], points=[point, point])


def test_type_names_are_rosbag2s() -> None:
    assert type_name(Image) == "sensor_msgs/msg/Image"
    assert type_name(ExecuteTask.Goal) == "executor_interfaces/action/ExecuteTask_Goal"


def test_definition_is_the_complete_ros2msg_text() -> None:
    text = message_definition(JointTrajectory)
    sections = text.split("=" * 80 + "\n")
    assert sections[0].startswith("# The header is used")  # the .msg file itself first
    heads = [s.splitlines()[0] for s in sections[1:]]
    assert heads == [
        "MSG: std_msgs/msg/Header",
        "MSG: builtin_interfaces/msg/Time",
        "MSG: trajectory_msgs/msg/JointTrajectoryPoint",
        "MSG: builtin_interfaces/msg/Duration",
    ]
    goal = message_definition(ExecuteTask.Goal)
    assert "string task_prompt" in goal
    assert "bool success" not in goal  # the result's section is not the goal's
    assert "bool success" in message_definition(ExecuteTask.Result)
    assert "MSG: trajectory_msgs/msg/JointTrajectory\n" in message_definition(ExecuteTask.Result)


@pytest.mark.parametrize("msg_class", RECORDED_TYPES, ids=lambda c: c.__name__)
def test_definitions_decode_what_rclpy_serializes(msg_class: type) -> None:
    decoders = generate_dynamic(type_name(msg_class), message_definition(msg_class))
    samples = {
        JointTrajectory: _trajectory(),
        ExecuteTask.Result: ExecuteTask.Result(
            success=True, message="done", trajectory=_trajectory(), recording_path="/r.mcap"
        ),
        ExecuteTask.Goal: ExecuteTask.Goal(task_prompt="stack", timeout_s=3.5, max_replans=2),
        JointState: JointState(name=["a"], position=[1.5]),
        Image: Image(height=1, width=2, encoding="rgb8", step=6, data=bytes(range(6))),
        CameraInfo: CameraInfo(width=4, d=[0.1, -0.2], distortion_model="plumb_bob"),
    }
    msg = samples.get(msg_class, msg_class())
    decoded = decoders[type_name(msg_class)](serialize_message(msg))
    for name in msg.get_fields_and_field_types():
        if name in ("trajectory", "header", "points"):
            continue
        assert _plain(getattr(decoded, name)) == _plain(getattr(msg, name)), name
    if msg_class is ExecuteTask.Result:
        assert decoded.trajectory.points[1].positions == [0.1, 0.2]


def test_file_appears_only_when_complete_and_reads_back(tmp_path: Path) -> None:
    clock = iter(range(1000, 100000, 10))
    recorder = McapRecorder(clock_ns=lambda: next(clock))
    path = tmp_path / "goal.mcap"
    assert not recorder.write("/x", JointState, JointState())  # nothing open
    recorder.open(path)
    assert recorder.write("/goal", ExecuteTask.Goal, ExecuteTask.Goal(task_prompt="stack"))
    raw = serialize_message(JointState(name=["a"], position=[2.0]))
    assert recorder.write("/joint_states", JointState, raw)  # bytes from a raw subscription
    assert recorder.write("/imagined", Image, Image(width=3), log_time_ns=5_000_000)
    assert recorder.write("/joint_states", JointState, raw)
    with pytest.raises(RuntimeError, match="already open"):
        recorder.open(tmp_path / "other.mcap")
    assert recorder.close({"executor_goal": {"task_prompt": "stack"}}) == path
    recorder.shutdown()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["goal.mcap"]  # no temporary left
    with path.open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        assert {s.encoding for s in summary.schemas.values()} == {"ros2msg"}
        assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
        seen = [
            (c.topic, m.log_time, m.sequence, msg)
            for _, c, m, msg in reader.iter_decoded_messages(log_time_order=False)
        ]
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    assert [s[0] for s in seen] == ["/goal", "/joint_states", "/imagined", "/joint_states"]
    assert [s[1] for s in seen] == [1000, 1010, 5_000_000, 1020]  # given time kept
    assert [s[2] for s in seen if s[0] == "/joint_states"] == [1, 2]
    assert seen[0][3].task_prompt == "stack"
    assert seen[1][3].position == [2.0]
    assert metadata == {"executor_goal": {"task_prompt": "stack"}}


def test_a_slow_writer_drops_and_counts_instead_of_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = mcap_recorder.serialize_message

    def stalled_serialize(msg: object) -> bytes:  # a test double for a slow disk
        release.wait(10)
        return real(msg)

    monkeypatch.setattr(mcap_recorder, "serialize_message", stalled_serialize)
    recorder = McapRecorder(max_queued=3)
    recorder.open(tmp_path / "slow.mcap")
    accepted = [recorder.write("/js", JointState, JointState()) for _ in range(10)]
    assert accepted.count(False) >= 6  # at most 3 queued + 1 being written
    assert recorder.dropped == accepted.count(False)
    release.set()
    recorder.close({})
    recorder.shutdown()
    with (tmp_path / "slow.mcap").open("rb") as stream:
        stats = make_reader(stream).get_summary().statistics
    assert stats.message_count == accepted.count(True)


def test_large_messages_are_bounded_by_bytes_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = mcap_recorder.serialize_message
    monkeypatch.setattr(  # a test double for a slow disk
        mcap_recorder, "serialize_message", lambda msg: release.wait(10) and real(msg)
    )
    recorder = McapRecorder(max_queued_bytes=1000)
    recorder.open(tmp_path / "big.mcap")
    image = Image(height=10, width=20, encoding="rgb8", step=60, data=bytes(600))
    accepted = [recorder.write("/image_raw", Image, image) for _ in range(10)]
    assert accepted[0]
    assert accepted.count(True) <= 2  # one being written, one queued
    release.set()
    recorder.close({})
    recorder.shutdown()


def test_an_unwritable_folder_fails_the_file_not_the_caller(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    recorder = McapRecorder()
    recorder.open(blocker / "goal.mcap")
    recorder.write("/js", JointState, JointState())
    with pytest.raises(OSError, match=r"could not write the recording .*not_a_folder/goal\.mcap"):
        recorder.close({})
    # the recorder goes on with the next file
    recorder.open(tmp_path / "next.mcap")
    recorder.write("/js", JointState, JointState())
    assert recorder.close({}).is_file()
    recorder.shutdown()


def test_a_message_that_cannot_be_serialized_discards_the_file(tmp_path: Path) -> None:
    recorder = McapRecorder()
    recorder.open(tmp_path / "bad.mcap")
    recorder.write("/js", JointState, object())
    with pytest.raises(OSError, match=r"bad\.mcap"):
        recorder.close({})
    recorder.shutdown()
    assert list(tmp_path.iterdir()) == []


UNSET = {"sec": 0, "nsec": 0}  # rmw's "unspecified" duration: the rmw default applies


def _profile(history: str, depth: int, reliability: str, durability: str) -> dict:
    """A profile as rosbag2 (metadata version 9) writes rclpy's default other policies."""
    return {
        "history": history,
        "depth": depth,
        "reliability": reliability,
        "durability": durability,
        "deadline": UNSET,
        "lifespan": UNSET,
        "liveliness": "system_default",
        "liveliness_lease_duration": UNSET,
        "avoid_ros_namespace_conventions": False,
    }


def test_every_channel_carries_its_offered_qos_as_rosbag2_writes_it(tmp_path: Path) -> None:
    recorder = McapRecorder()
    path = tmp_path / "qos.mcap"
    offered = {
        "/image_raw": sensor_qos(5),
        "/commanded_trajectory": command_qos(),
        "/safety_status": status_qos(),
    }
    recorder.open(path, offered)
    recorder.write("/image_raw", Image, Image(width=1))
    recorder.write("/commanded_trajectory", JointTrajectory, _trajectory())
    recorder.write("/safety_status", SafetyStatus, SafetyStatus())
    recorder.write("/not_offered", JointState, JointState())
    recorder.close({})
    recorder.shutdown()
    with path.open("rb") as stream:
        summary = make_reader(stream).get_summary()
    channels = summary.channels.values()
    # what rosbag2's MCAP storage reads for `ros2 bag info` (it needs the statistics record)
    assert summary.statistics.channel_message_counts == {c.id: 1 for c in channels}
    texts = {c.topic: c.metadata["offered_qos_profiles"] for c in channels}
    parsed = {topic: yaml.safe_load(text) for topic, text in texts.items()}
    assert parsed == {
        "/image_raw": [_profile("keep_last", 5, "best_effort", "volatile")],
        "/commanded_trajectory": [_profile("keep_last", 10, "reliable", "volatile")],
        "/safety_status": [_profile("keep_last", 1, "reliable", "transient_local")],
        "/not_offered": [],  # as rosbag2 writes a topic nobody offered
    }
    # a YAML block list of maps in rosbag2's key order (its reader looks keys up by name)
    assert texts["/safety_status"].startswith("- history: keep_last\n  depth: 1\n")


def test_qos_yaml_names_policies_and_splits_durations_as_rmw_does() -> None:
    qos = QoSProfile(
        history=HistoryPolicy.KEEP_ALL,
        depth=0,
        reliability=ReliabilityPolicy.BEST_AVAILABLE,
        durability=DurabilityPolicy.SYSTEM_DEFAULT,
        deadline=RclpyDuration(seconds=1, nanoseconds=250_000_000),
        lifespan=RclpyDuration(nanoseconds=2**63 - 1),  # rmw's "infinite"
        liveliness=LivelinessPolicy.MANUAL_BY_TOPIC,
        liveliness_lease_duration=RclpyDuration(nanoseconds=7),
        avoid_ros_namespace_conventions=True,
    )
    [entry] = yaml.safe_load(offered_qos_yaml([qos]))
    assert entry == {
        "history": "keep_all",
        "depth": 0,
        "reliability": "best_available",
        "durability": "system_default",
        "deadline": {"sec": 1, "nsec": 250_000_000},
        "lifespan": {"sec": 9223372036, "nsec": 854775807},
        "liveliness": "manual_by_topic",
        "liveliness_lease_duration": {"sec": 0, "nsec": 7},
        "avoid_ros_namespace_conventions": True,
    }
    assert yaml.safe_load(offered_qos_yaml([sensor_qos(1), sensor_qos(3)]))[1]["depth"] == 3


def test_goal_recordings_offer_every_topic_the_graphs_qos() -> None:
    assert set(RECORDED_QOS) == set(ALL_TOPICS)
    by_kind: dict[tuple, list[str]] = {}
    for topic, qos in sorted(RECORDED_QOS.items()):
        assert qos.history == HistoryPolicy.KEEP_LAST, topic
        by_kind.setdefault((qos.reliability, qos.durability, qos.depth), []).append(topic)
    assert by_kind == {
        (ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE, 5): [
            "camera_info",
            "image_raw",
            "imagined/image_raw",
            "joint_states",
        ],
        (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 10): [
            "commanded_trajectory",
            "execute_task/feedback",
            "execute_task/goal",
            "execute_task/result",
        ],
        (ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 1): ["safety_status"],
    }
