"""Our interfaces as built into the venv by scripts/build_interfaces.py.

control_msgs is a pip-world subset of ros2_control's package: it must stay wire-compatible,
so its field names, types and order are pinned here, and so are the RIHS01 type hashes
(Kilted puts them on the wire; the values equal those in upstream control_msgs' generated
headers for the same definition).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARE = Path(sys.prefix) / "share"

GOAL_FIELDS = {
    "trajectory": "trajectory_msgs/JointTrajectory",
    "multi_dof_trajectory": "trajectory_msgs/MultiDOFJointTrajectory",
    "path_tolerance": "sequence<control_msgs/JointTolerance>",
    "component_path_tolerance": "sequence<control_msgs/JointComponentTolerance>",
    "goal_tolerance": "sequence<control_msgs/JointTolerance>",
    "component_goal_tolerance": "sequence<control_msgs/JointComponentTolerance>",
    "goal_time_tolerance": "builtin_interfaces/Duration",
}
RESULT_FIELDS = {"error_code": "int32", "error_string": "string"}
FEEDBACK_FIELDS = {
    "header": "std_msgs/Header",
    "joint_names": "sequence<string>",
    "desired": "trajectory_msgs/JointTrajectoryPoint",
    "actual": "trajectory_msgs/JointTrajectoryPoint",
    "error": "trajectory_msgs/JointTrajectoryPoint",
    "multi_dof_joint_names": "sequence<string>",
    "multi_dof_desired": "trajectory_msgs/MultiDOFJointTrajectoryPoint",
    "multi_dof_actual": "trajectory_msgs/MultiDOFJointTrajectoryPoint",
    "multi_dof_error": "trajectory_msgs/MultiDOFJointTrajectoryPoint",
}
# From upstream control_msgs' generated follow_joint_trajectory__struct.h (same definition).
UPSTREAM_HASHES = {
    "control_msgs/action/FollowJointTrajectory_SendGoal": (
        "RIHS01_b13789dddc325a7a962825c45e28c77d37237ec129dd0c34dc5994562938c57f"
    ),
    "control_msgs/action/FollowJointTrajectory_GetResult": (
        "RIHS01_e3ceb38e3e1867c8dc0f46014df26e90eb93422f27e9e97f936e07f94be4bc8b"
    ),
    "control_msgs/action/FollowJointTrajectory_FeedbackMessage": (
        "RIHS01_80398fcb9674a79081a9906e2ccf0c804dd7cb15e22e362e606ee87186beab71"
    ),
}


def test_follow_joint_trajectory_matches_upstream_field_for_field() -> None:
    from control_msgs.action import FollowJointTrajectory
    from control_msgs.msg import JointComponentTolerance, JointTolerance

    # dicts keep order: this checks names, types and order at once
    assert list(FollowJointTrajectory.Goal.get_fields_and_field_types().items()) == list(
        GOAL_FIELDS.items()
    )
    assert list(FollowJointTrajectory.Result.get_fields_and_field_types().items()) == list(
        RESULT_FIELDS.items()
    )
    assert list(FollowJointTrajectory.Feedback.get_fields_and_field_types().items()) == list(
        FEEDBACK_FIELDS.items()
    )
    assert list(JointTolerance.get_fields_and_field_types().items()) == [
        ("name", "string"),
        ("position", "double"),
        ("velocity", "double"),
        ("acceleration", "double"),
    ]
    assert list(JointComponentTolerance.get_fields_and_field_types()) == [
        "joint_name",
        "component",
        "position",
        "velocity",
        "acceleration",
    ]
    r = FollowJointTrajectory.Result
    assert (
        r.SUCCESSFUL,
        r.INVALID_GOAL,
        r.INVALID_JOINTS,
        r.OLD_HEADER_TIMESTAMP,
        r.PATH_TOLERANCE_VIOLATED,
        r.GOAL_TOLERANCE_VIOLATED,
    ) == (0, -1, -2, -3, -4, -5)
    c = JointComponentTolerance
    assert (c.X_AXIS, c.Y_AXIS, c.Z_AXIS, c.TRANSLATION, c.ROTATION) == (1, 2, 3, 4, 5)


def test_type_hashes_equal_upstream_control_msgs() -> None:
    data = json.loads(
        (SHARE / "control_msgs" / "action" / "FollowJointTrajectory.json").read_text()
    )
    hashes = {h["type_name"]: h["hash_string"] for h in data["type_hashes"]}
    for type_name, expected in UPSTREAM_HASHES.items():
        assert hashes[type_name] == expected, type_name


# tf2_msgs (TFMessage only): the hash upstream geometry2 generates for the same definition.
UPSTREAM_TF_MESSAGE_HASH = "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087"


def test_tf_message_matches_upstream_tf2_msgs() -> None:
    from geometry_msgs.msg import TransformStamped
    from rclpy.serialization import deserialize_message, serialize_message
    from tf2_msgs.msg import TFMessage

    assert list(TFMessage.get_fields_and_field_types().items()) == [
        ("transforms", "sequence<geometry_msgs/TransformStamped>")
    ]
    data = json.loads((SHARE / "tf2_msgs" / "msg" / "TFMessage.json").read_text())
    hashes = {h["type_name"]: h["hash_string"] for h in data["type_hashes"]}
    assert hashes["tf2_msgs/msg/TFMessage"] == UPSTREAM_TF_MESSAGE_HASH
    tf = TransformStamped(child_frame_id="camera_optical_frame")
    tf.header.frame_id = "gripper_link"
    tf.transform.translation.x = 0.0125
    tf.transform.rotation.w = 1.0
    back = deserialize_message(serialize_message(TFMessage(transforms=[tf])), TFMessage)
    assert back.transforms[0].child_frame_id == "camera_optical_frame"
    assert back.transforms[0].transform.translation.x == 0.0125


def test_executor_interfaces_round_trip_through_cdr() -> None:
    from executor_interfaces.action import ExecuteTask
    from executor_interfaces.msg import SafetyStatus
    from rclpy.serialization import deserialize_message, serialize_message

    goal = ExecuteTask.Goal(
        task_prompt="put the red cube in the bowl", timeout_s=12.5, max_replans=-1
    )
    back = deserialize_message(serialize_message(goal), ExecuteTask.Goal)
    assert (back.task_prompt, back.timeout_s, back.max_replans) == (goal.task_prompt, 12.5, -1)
    status = SafetyStatus(
        estop_latched=True,
        heartbeat_ok=False,
        last_rejection="joint 'elbow_flex' point 3: 2.5 rad > 1.69",
    )
    back = deserialize_message(serialize_message(status), SafetyStatus)
    assert back.estop_latched
    assert not back.heartbeat_ok
    assert back.last_rejection == status.last_rejection
    assert ExecuteTask.Feedback.PHASE_VERIFYING == "verifying"
    assert "trajectory" in ExecuteTask.Result.get_fields_and_field_types()
    fields = list(ExecuteTask.Result.get_fields_and_field_types())
    assert fields.index("executed_video_path") == fields.index("imagined_video_path") + 1
    result = ExecuteTask.Result(success=True, executed_video_path="/tmp/v/a_0_executed.mp4")
    back = deserialize_message(serialize_message(result), ExecuteTask.Result)
    assert back.executed_video_path == "/tmp/v/a_0_executed.mp4"


def test_rebuild_is_skipped_when_nothing_changed() -> None:
    cmd = [sys.executable, str(REPO / "scripts" / "build_interfaces.py")]
    # The first run builds only if the definitions or the builder changed since the install.
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    # control_msgs, tf2_msgs, executor_interfaces
    assert second.stderr.count("up to date (stamp matches)") == 3, second.stderr


SERVER = textwrap.dedent(
    """
    import sys, time, rclpy
    from rclpy.action import ActionServer
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from control_msgs.action import FollowJointTrajectory
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(sys.argv[1]))
    node = rclpy.create_node("double_controller", context=ctx)
    def execute(handle):
        goal = handle.request
        handle.publish_feedback(FollowJointTrajectory.Feedback(
            joint_names=list(goal.trajectory.joint_names)))
        handle.succeed()
        return FollowJointTrajectory.Result(
            error_code=FollowJointTrajectory.Result.GOAL_TOLERANCE_VIOLATED,
            error_string=f"{len(goal.trajectory.points)} points, "
                         f"tol {goal.goal_tolerance[0].name}={goal.goal_tolerance[0].position}")
    ActionServer(node, FollowJointTrajectory, "arm_controller/follow_joint_trajectory", execute)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    """
)
CLIENT = textwrap.dedent(
    """
    import json, sys, rclpy
    from rclpy.action import ActionClient
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from control_msgs.action import FollowJointTrajectory
    from control_msgs.msg import JointTolerance
    from trajectory_msgs.msg import JointTrajectoryPoint
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(sys.argv[1]))
    node = rclpy.create_node("double_client", context=ctx)
    client = ActionClient(node, FollowJointTrajectory, "arm_controller/follow_joint_trajectory")
    assert client.wait_for_server(timeout_sec=30), "server not discovered"
    goal = FollowJointTrajectory.Goal()
    goal.trajectory.joint_names = ["shoulder_pan", "gripper"]
    goal.trajectory.points = [JointTrajectoryPoint(positions=[0.1, 0.2])] * 3
    goal.goal_tolerance = [JointTolerance(name="gripper", position=0.02)]
    feedback = []
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    sent = client.send_goal_async(
        goal, feedback_callback=lambda m: feedback.append(list(m.feedback.joint_names)))
    executor.spin_until_future_complete(sent, timeout_sec=30)
    result = sent.result().get_result_async()
    executor.spin_until_future_complete(result, timeout_sec=30)
    r = result.result().result
    print(json.dumps({"code": r.error_code, "text": r.error_string, "feedback": feedback}))
    """
)


@pytest.mark.ros
def test_follow_joint_trajectory_action_across_two_processes(tmp_path: Path) -> None:
    domain_id = 100 + os.getpid() % 100
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "client.py").write_text(CLIENT)
    server = subprocess.Popen(
        [sys.executable, str(tmp_path / "server.py"), str(domain_id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = subprocess.run(
            [sys.executable, str(tmp_path / "client.py"), str(domain_id)],
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        server.kill()
        server.communicate()
    assert client.returncode == 0, client.stderr
    out = json.loads(client.stdout.strip().splitlines()[-1])
    assert out["code"] == -5
    assert out["text"] == "3 points, tol gripper=0.02"
    assert out["feedback"] == [["shoulder_pan", "gripper"]]
