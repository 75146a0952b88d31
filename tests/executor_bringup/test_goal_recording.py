"""A goal over the whole graph is recorded into one MCAP file that the ROS 2 readers open,
and that file converts into a LeRobotDataset that LeRobot loads.

sim_arm_node (MuJoCo SO-101) <- safety_node <- executor_node (tiny random test-double
models), one process each, over real DDS in a namespace; this test process is the operator
(heartbeat, goal) and reads the file back with ``mcap_ros2`` / ``mcap``.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from action_msgs.msg import GoalStatus
from executor_interfaces.action import ExecuteTask
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from ros_helpers import (
    RosSession,
    SafeActionClient,
    fresh_domain_id,
    node_process,
    result_of,
    stop_process,
    wait_for,
)
from sensor_msgs.msg import Image
from std_msgs.msg import Empty

from executor_bringup.mcap_to_lerobot import McapToLeRobotConfig, convert
from executor_bringup.qos import command_qos, sensor_qos
from executor_bringup.recording_layout import ALL_TOPICS, GOAL_METADATA, in_namespace

pytestmark = pytest.mark.ros
NS = "/recording_test"
PROMPT = "put the red cube in the bowl"
VIDEO_FPS = 2.5  # executor_node's video_fps: the imagined frames' spacing


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory):
    """One goal run to its end; (action result, feedback received, record_dir)."""
    logs = tmp_path_factory.mktemp("recording_logs")
    record_dir = logs / "recordings"
    domain = fresh_domain_id()
    procs = [
        node_process(
            "sim_arm_node",
            domain,
            NS,
            {"autostart": True, "camera_rate_hz": 10.0, "goal_time_tolerance_s": 3.0},
            logs / "sim.log",
        ),
        node_process("safety_node", domain, NS, {"heartbeat_timeout_s": 5.0}, logs / "safety.log"),
        node_process(
            "executor_node",
            domain,
            NS,
            {
                "max_image_age_s": 3.0,
                "settle_timeout_s": 4.0,
                "video_dir": str(logs / "videos"),
                "record_dir": str(record_dir),
                "video_fps": VIDEO_FPS,
            },
            logs / "exec.log",
        ),
    ]
    session = RosSession(domain)
    operator = session.node("operator", NS)
    images: list[Image] = []
    operator.create_subscription(Image, "image_raw", images.append, sensor_qos())
    heartbeat = operator.create_publisher(Empty, "heartbeat", command_qos())
    operator.create_timer(0.1, lambda: heartbeat.publish(Empty()))
    client = SafeActionClient(operator, ExecuteTask, "execute_task")
    try:
        wait_for(lambda: client.server_is_ready() and images, 150, "the server and images")
        # The operator seeing frames does not mean executor_node does: under load its image
        # subscription can match seconds later (a CI run aborted with "no valid image").
        wait_for(
            lambda: operator.count_subscribers("image_raw") >= 2,
            60,
            "executor's image subscription",
        )
        seen = len(images)
        wait_for(lambda: len(images) >= seen + 5, 30, "five more frames after it matched")
        feedback: list = []
        goal = ExecuteTask.Goal(task_prompt=PROMPT, timeout_s=60.0, max_replans=0)
        send = client.send_goal_async(goal, feedback_callback=feedback.append)
        handle = result_of(send, 10)
        assert handle.accepted
        yield result_of(handle.get_result_async(), 90), feedback, record_dir
    finally:
        session.close()
        for proc in procs:
            stop_process(proc)
        for name in ("sim", "safety", "exec"):
            sys.stderr.write((logs / f"{name}.log").read_text()[-3000:])


@dataclass
class Decoded:
    topic: str
    log_time_ns: int
    ros_msg: object


def _messages(path: Path) -> list[Decoded]:
    """Every message decoded by mcap_ros2, in file order."""
    with path.open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        return [
            Decoded(channel.topic, message.log_time, msg)
            for _, channel, message, msg in reader.iter_decoded_messages(log_time_order=False)
        ]


def test_the_result_names_one_complete_file(recorded) -> None:
    response, _, record_dir = recorded
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
    path = Path(response.result.recording_path)
    assert path.parent == record_dir.resolve()
    assert path.suffix == ".mcap"
    assert sorted(record_dir.iterdir()) == [path]  # one file, no temporary left


def test_the_file_holds_every_topic_decodable(recorded) -> None:
    response, feedback, _ = recorded
    path = Path(response.result.recording_path)
    with path.open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    assert {s.encoding for s in summary.schemas.values()} == {"ros2msg"}
    assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
    types = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
    assert types == {
        f"{NS}/image_raw": "sensor_msgs/msg/Image",
        f"{NS}/camera_info": "sensor_msgs/msg/CameraInfo",
        f"{NS}/joint_states": "sensor_msgs/msg/JointState",
        f"{NS}/commanded_trajectory": "trajectory_msgs/msg/JointTrajectory",
        f"{NS}/safety_status": "executor_interfaces/msg/SafetyStatus",
        f"{NS}/imagined/image_raw": "sensor_msgs/msg/Image",
        f"{NS}/execute_task/goal": "executor_interfaces/action/ExecuteTask_Goal",
        f"{NS}/execute_task/feedback": "executor_interfaces/action/ExecuteTask_Feedback",
        f"{NS}/execute_task/result": "executor_interfaces/action/ExecuteTask_Result",
    }
    assert set(types) == {in_namespace(NS, t) for t in ALL_TOPICS}
    by_topic: dict[str, list] = {}
    for m in _messages(path):  # every message decodes
        by_topic.setdefault(m.topic.removeprefix(NS + "/"), []).append(m)
    assert by_topic["execute_task/goal"][0].ros_msg.task_prompt == PROMPT
    result = by_topic["execute_task/result"][-1].ros_msg
    assert result.recording_path == str(path)
    assert result.success
    assert len(result.trajectory.points) == len(response.result.trajectory.points) > 0
    phases = [m.ros_msg.phase for m in by_topic["execute_task/feedback"]]
    assert phases == [f.feedback.phase for f in feedback]  # all of it, in order
    assert {"imagining", "executing", "verifying"} <= set(phases)
    commanded = by_topic["commanded_trajectory"]
    assert sum(len(m.ros_msg.points) for m in commanded) == len(result.trajectory.points)
    assert len(by_topic["image_raw"]) >= 10  # 10 Hz over a goal of seconds
    assert by_topic["image_raw"][0].ros_msg.height == 64
    js = by_topic["joint_states"][-1].ros_msg
    assert list(js.name)[:6] == [
        "shoulder_pan",
        "shoulder_lift",
        "elbow_flex",
        "wrist_flex",
        "wrist_roll",
        "gripper",
    ]
    assert by_topic["camera_info"][0].ros_msg.width == 64
    assert hasattr(by_topic["safety_status"][0].ros_msg, "heartbeat_ok")
    assert metadata[GOAL_METADATA]["task_prompt"] == PROMPT
    assert metadata[GOAL_METADATA]["status"] == "succeeded"


def test_every_topic_carries_the_qos_ros2_bag_play_offers(recorded) -> None:
    response, _, _ = recorded
    with Path(response.result.recording_path).open("rb") as stream:
        channels = make_reader(stream).get_summary().channels.values()
    offered = {c.topic: yaml.safe_load(c.metadata["offered_qos_profiles"]) for c in channels}
    assert {len(profiles) for profiles in offered.values()} == {1}  # each topic's own
    qos = {topic.removeprefix(NS + "/"): p[0] for topic, p in offered.items()}
    assert (qos["safety_status"]["reliability"], qos["safety_status"]["durability"]) == (
        "reliable",
        "transient_local",
    )
    assert qos["image_raw"]["reliability"] == qos["joint_states"]["reliability"] == "best_effort"
    assert qos["commanded_trajectory"]["reliability"] == "reliable"


def test_timestamps_are_monotone(recorded) -> None:
    response, _, _ = recorded
    messages = _messages(Path(response.result.recording_path))
    imagined_topic = f"{NS}/imagined/image_raw"
    received = [m.log_time_ns for m in messages if m.topic != imagined_topic]
    assert received == sorted(received)  # the file is in receive order
    assert messages[0].topic == f"{NS}/execute_task/goal"
    action = [m.topic for m in messages if "/execute_task/" in m.topic]
    assert action[-1] == f"{NS}/execute_task/result"
    for topic in ("image_raw", "joint_states"):
        stamps = [
            m.ros_msg.header.stamp.sec * 10**9 + m.ros_msg.header.stamp.nanosec
            for m in messages
            if m.topic == f"{NS}/{topic}"
        ]
        assert stamps == sorted(stamps), topic
    imagined = [m for m in messages if m.topic == imagined_topic]
    stamps_ns = np.array(
        [m.ros_msg.header.stamp.sec * 10**9 + m.ros_msg.header.stamp.nanosec for m in imagined]
    )
    assert len(imagined) >= 2
    np.testing.assert_allclose(np.diff(stamps_ns), 1e9 / VIDEO_FPS, atol=1)  # one video
    assert [m.log_time_ns for m in imagined] == list(stamps_ns)  # logged when they show
    first_image = min(m.log_time_ns for m in messages if m.topic == f"{NS}/image_raw")
    assert stamps_ns[0] >= first_image - 3 * 10**9  # starts at an observed frame's stamp


def _convert_and_load(path: str, root: str) -> dict:
    """Convert the recording and read it back with LeRobot; runs in a child process: the
    video decoding behind LeRobotDataset leaves busy threads behind in the process that
    used it, which would starve the timing-sensitive ROS tests that follow."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    cfg = McapToLeRobotConfig(
        recordings=(Path(path),), root=Path(root), repo_id="test/rec", namespace=NS
    )
    summary = convert(cfg)
    dataset = LeRobotDataset("test/rec", root=Path(root))
    items = [dataset[i] for i in (0, len(dataset) - 1)]
    states = np.stack([dataset[i]["observation.state"].numpy() for i in range(len(dataset))])
    return {
        "summary": summary,
        "length": len(dataset),
        "tasks": [it["task"] for it in items],
        "image_shapes": [tuple(it["observation.images.scene"].shape) for it in items],
        "state_shapes": [tuple(it["observation.state"].shape) for it in items],
        "action_shapes": [tuple(it["action"].shape) for it in items],
        "state_range": float(np.ptp(states, axis=0).max()),
    }


def test_the_recording_converts_to_a_dataset_lerobot_loads(recorded, tmp_path: Path) -> None:
    response, _, _ = recorded
    with mp.get_context("spawn").Pool(1) as pool:
        out = pool.apply(
            _convert_and_load, (response.result.recording_path, str(tmp_path / "recorded"))
        )
    assert out["summary"]["episodes"] == 1
    assert out["length"] == out["summary"]["frames"] >= 10
    assert out["tasks"] == [PROMPT, PROMPT]
    assert out["image_shapes"] == [(3, 64, 64)] * 2
    assert out["state_shapes"] == out["action_shapes"] == [(6,)] * 2
    assert out["state_range"] > 0.01  # the arm moved during the recording


def test_feedback_reports_the_plan_time(recorded) -> None:
    """last_plan_s: 0 until the first video is imagined, then how long imagining took
    (the same figure the recording's feedback holds)."""
    _, feedback, _ = recorded
    first = feedback[0].feedback
    assert first.phase == ExecuteTask.Feedback.PHASE_IMAGINING
    assert first.last_plan_s == 0.0
    after = [f.feedback for f in feedback if f.feedback.phase != first.phase]
    assert after, "no feedback after imagining"
    assert all(0.0 < f.last_plan_s < f.elapsed_s for f in after)
