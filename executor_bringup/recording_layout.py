"""What a goal recording holds: its topics and metadata (pure; no ROS import).

executor_node writes one MCAP file per goal (``executor_bringup.goal_recording``);
``executor-mcap-to-lerobot`` (``executor_bringup.mcap_to_lerobot``) reads it. Topic names
are relative: in the file they carry the node's namespace (``/image_raw``, or
``/arm1/image_raw`` under ``--namespace /arm1``), as ``ros2 bag record`` would write them.

- ``image_raw``, ``camera_info`` (sensor_msgs Image / CameraInfo): the camera, as received;
- ``joint_states`` (sensor_msgs/JointState): the arm, as received;
- ``commanded_trajectory`` (trajectory_msgs/JointTrajectory): every trajectory sent to the
  safety node (a chunk, the move home, an empty "hold"), logged when it was sent;
- ``safety_status`` (executor_interfaces/SafetyStatus): the safety node's latched status;
- ``imagined/image_raw`` (sensor_msgs/Image): the imagined videos, frame ``k`` stamped (and
  logged) at the observed frame's stamp + ``k`` video periods, the moment it shows;
- ``execute_task/goal``, ``execute_task/feedback``, ``execute_task/result``
  (executor_interfaces/action/ExecuteTask_Goal, _Feedback, _Result): the action's goal,
  every feedback, the result.

The commanded trajectory has its own name: replaying a recording (``ros2 bag play``) must
not command the arm through the safety node's input. Metadata record ``executor_goal``:
``goal_id``, ``task_prompt``, ``status``, ``message``, ``node``.
"""

from __future__ import annotations

IMAGE_TOPIC = "image_raw"
CAMERA_INFO_TOPIC = "camera_info"
JOINT_STATES_TOPIC = "joint_states"
COMMAND_TOPIC = "commanded_trajectory"
SAFETY_STATUS_TOPIC = "safety_status"
IMAGINED_TOPIC = "imagined/image_raw"
GOAL_TOPIC = "execute_task/goal"
FEEDBACK_TOPIC = "execute_task/feedback"
RESULT_TOPIC = "execute_task/result"
ALL_TOPICS = (
    IMAGE_TOPIC,
    CAMERA_INFO_TOPIC,
    JOINT_STATES_TOPIC,
    COMMAND_TOPIC,
    SAFETY_STATUS_TOPIC,
    IMAGINED_TOPIC,
    GOAL_TOPIC,
    FEEDBACK_TOPIC,
    RESULT_TOPIC,
)
GOAL_METADATA = "executor_goal"


def in_namespace(namespace: str, topic: str) -> str:
    """The absolute name of a relative ``topic`` in ``namespace`` ("" or "/": the root)."""
    ns = namespace.strip("/")
    return f"/{ns}/{topic}" if ns else f"/{topic}"
