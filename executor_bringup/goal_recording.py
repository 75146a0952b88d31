"""executor_node's recording of each goal: one MCAP file per goal, its path in the result.

``GoalRecording`` is the node's side of ``executor_bringup.mcap_recorder``: the topics of
``executor_bringup.recording_layout`` (camera, joint states, the commanded trajectories,
the safety status, the imagined frames, the action's goal, feedback and result) go into
``<record_dir>/<UTC time>_<goal id>.mcap``.

- ``joint_states``, ``camera_info`` and ``safety_status`` come from raw subscriptions of
  their own (the serialized bytes go to the file as received), made when a goal starts and
  removed when it ends, so an idle node wakes for none of them; ``safety_status`` is
  latched, so its current value arrives at once. ``image_raw`` is the node's own camera
  subscription, the commands what ``RosArm`` sends, the rest the goal's own messages.
- Every channel carries the QoS its topic is offered with (``RECORDED_QOS``: sensor data
  best-effort, commands and the action's messages reliable, ``safety_status`` latched), as
  rosbag2's ``offered_qos_profiles``, so ``ros2 bag play`` republishes each the same way.
- Callbacks only queue (``McapRecorder.write``); the goal's worker thread waits for the
  file to be complete only at the end of the goal, before the result is sent.
- A file that cannot be written costs the goal nothing: the error is logged and the
  result's ``recording_path`` stays empty. ``record_dir`` "" turns recording off; it is
  read per goal (a relative one against the node's working directory).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from executor_interfaces.action import ExecuteTask
from executor_interfaces.msg import SafetyStatus
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.mcap_recorder import McapRecorder
from executor_bringup.qos import command_qos, sensor_qos, status_qos
from executor_bringup.recording_layout import (
    CAMERA_INFO_TOPIC,
    COMMAND_TOPIC,
    FEEDBACK_TOPIC,
    GOAL_METADATA,
    GOAL_TOPIC,
    IMAGE_TOPIC,
    IMAGINED_TOPIC,
    JOINT_STATES_TOPIC,
    RESULT_TOPIC,
    SAFETY_STATUS_TOPIC,
)
from executor_core.config_cli import require_positive

# How long the end of a goal may wait for its file to be complete.
CLOSE_TIMEOUT_S = 30.0
# The QoS of each recorded topic: what its subscription here requests (the camera, joint
# states, camera_info and safety_status), what the node publishes with (the commands), and
# rclpy's action defaults (reliable, volatile, keep-last 10) for the action's messages.
RECORDED_QOS = {
    IMAGE_TOPIC: sensor_qos(5),
    CAMERA_INFO_TOPIC: sensor_qos(5),
    JOINT_STATES_TOPIC: sensor_qos(5),
    COMMAND_TOPIC: command_qos(),
    SAFETY_STATUS_TOPIC: status_qos(),
    IMAGINED_TOPIC: sensor_qos(5),
    GOAL_TOPIC: command_qos(),
    FEEDBACK_TOPIC: command_qos(),
    RESULT_TOPIC: command_qos(),
}


def ns_to_stamp(t_ns: int) -> Time:
    return Time(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000)


class GoalRecording:
    """Records the current goal, if any; every method is a no-op while none is open."""

    def __init__(self, node: Node, video_fps: float, callback_group: object) -> None:
        require_positive("video_fps", video_fps)
        self.node, self.callback_group = node, callback_group
        self.frame_period_ns = round(1e9 / video_fps)  # between imagined frames
        self.recorder = McapRecorder(lambda: node.get_clock().now().nanoseconds)
        self._subscriptions: list = []
        self._path: Path | None = None  # the file of the goal being recorded
        self._goal_id = ""
        self._prompt = ""
        self._observed_ns = 0  # stamp of the frame the next imagined video starts from
        self._frame_id = ""  # the camera's

    @property
    def active(self) -> bool:
        return self._path is not None

    def topic(self, relative: str) -> str:
        return self.node.resolve_topic_name(relative)

    # -- the goal's life
    def begin(self, goal_handle: object, record_dir: str) -> None:
        """Start recording a goal into ``record_dir`` ("": do not record this one)."""
        if not record_dir:
            return
        self._goal_id = bytes(goal_handle.goal_id.uuid).hex()
        self._prompt = goal_handle.request.task_prompt
        utc = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        path = Path(record_dir).expanduser().resolve() / f"{utc}_{self._goal_id[:12]}.mcap"
        self.recorder.open(path, {self.topic(t): qos for t, qos in RECORDED_QOS.items()})
        self.recorder.write(self.topic(GOAL_TOPIC), ExecuteTask.Goal, goal_handle.request)
        self._path = path  # active from here on: the goal is the file's first message
        for relative, msg_class in (
            (JOINT_STATES_TOPIC, JointState),
            (CAMERA_INFO_TOPIC, CameraInfo),
            (SAFETY_STATUS_TOPIC, SafetyStatus),
        ):
            qos = RECORDED_QOS[relative]
            self._subscriptions.append(self._raw_subscription(relative, msg_class, qos))

    def _raw_subscription(self, relative: str, msg_class: type, qos: object) -> object:
        topic, recorder = self.topic(relative), self.recorder

        def on_message(data: bytes) -> None:
            recorder.write(topic, msg_class, data)

        return self.node.create_subscription(
            msg_class, relative, on_message, qos, callback_group=self.callback_group, raw=True
        )

    def end(self, result: ExecuteTask.Result, status: str) -> str:
        """Record the result, finish the file; its path, or '' (none, or not written)."""
        if self._path is None:
            return ""
        for subscription in self._subscriptions:
            self.node.destroy_subscription(subscription)
        self._subscriptions = []
        path, self._path = self._path, None
        result.recording_path = str(path)
        self.recorder.write(self.topic(RESULT_TOPIC), ExecuteTask.Result, result)
        metadata = {
            "goal_id": self._goal_id,
            "task_prompt": self._prompt,
            "status": status,
            "message": result.message,
            "node": self.node.get_fully_qualified_name(),
        }
        started = time.monotonic()
        try:
            self.recorder.close({GOAL_METADATA: metadata}, CLOSE_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:  # a by-product: the goal's outcome stands
            self.node.get_logger().error(f"goal recording not written: {exc}")
            result.recording_path = ""
            return ""
        self.node.get_logger().info(
            f"recording {path} written (finished {time.monotonic() - started:.2f} s after "
            f"the goal ended)"
        )
        return str(path)

    def shutdown(self) -> None:
        self.recorder.shutdown()

    # -- what happens during the goal
    def image(self, msg: Image) -> None:
        """From the node's image callback."""
        self._frame_id = msg.header.frame_id
        if self.active:
            self.recorder.write(self.topic(IMAGE_TOPIC), Image, msg)

    def command(self, msg: JointTrajectoryMsg) -> None:
        """A trajectory that went to the safety node (RosArm)."""
        if self.active:
            self.recorder.write(self.topic(COMMAND_TOPIC), JointTrajectoryMsg, msg)

    def observed(self, stamp_s: float) -> None:
        """The camera frame the runner observed (RosArm); an imagined video starts there."""
        self._observed_ns = round(stamp_s * 1e9)

    def feedback(self, msg: ExecuteTask.Feedback) -> None:
        if self.active:
            self.recorder.write(self.topic(FEEDBACK_TOPIC), ExecuteTask.Feedback, msg)

    def imagined(self, video: np.ndarray) -> None:
        """(T, H, W, 3) uint8; frame k stamped and logged at the moment it shows."""
        if not self.active:
            return
        topic = self.topic(IMAGINED_TOPIC)
        start_ns = self._observed_ns or self.node.get_clock().now().nanoseconds
        for k, frame in enumerate(video):
            t_ns = start_ns + k * self.frame_period_ns
            msg = fill_image_msg(Image(), np.ascontiguousarray(frame), "rgb8")
            msg.header.stamp, msg.header.frame_id = ns_to_stamp(t_ns), self._frame_id
            self.recorder.write(topic, Image, msg, log_time_ns=t_ns)
