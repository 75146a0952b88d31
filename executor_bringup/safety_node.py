"""safety_node: the only way a trajectory reaches the arm.

Every trajectory is checked by ``executor_core.safety`` against the robot description
(limits, NaN/inf, joint-name set, jump from the measured ``joint_states``) and is either
forwarded unchanged or rejected with a message naming the joint, point and value; nothing
is clipped. Forwarding is gated by two latches:

- dead-man: ``heartbeat`` (std_msgs/Empty) must be fresher than ``heartbeat_timeout_s``
  (0 disables it, for bench setups only). When it goes stale, motion is stopped.
- e-stop: ``e_stop`` (std_msgs/Bool, ``true`` latches). Only the ``reset_e_stop`` service
  (std_srvs/Trigger) clears it.

Stopping = cancel the running downstream FollowJointTrajectory goal (the JTC then holds)
and publish an empty trajectory on ``<controller>/joint_trajectory`` (the JTC's topic
"hold here"). ``safety_status`` (SafetyStatus, transient local) is published whenever
the state changes.

``interface`` selects the pair that is served: ``topic`` (``<input_name>/joint_trajectory``
-> ``<controller>/joint_trajectory``) or ``action`` (a FollowJointTrajectory proxy:
``<input_name>/follow_joint_trajectory`` -> ``<controller>/follow_joint_trajectory``, with
feedback, cancel and the controller's result relayed).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
from action_msgs.msg import GoalStatus
from control_msgs.action import FollowJointTrajectory
from executor_interfaces.msg import SafetyStatus
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Empty
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from executor_bringup.node_main import run_node
from executor_bringup.qos import command_qos, sensor_qos, status_qos
from executor_bringup.trajectory_conversion import msg_arrays
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.safety import SafetyConfig, SafetyReport, SafetySupervisor, check_trajectory

logger = logging.getLogger(__name__)

INVALID_GOAL = FollowJointTrajectory.Result.INVALID_GOAL
INVALID_JOINTS = FollowJointTrajectory.Result.INVALID_JOINTS


def wait_future(future: Future, timeout_s: float) -> bool:
    """Block this (non-spinning) thread until the future is done; False on timeout."""
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    return done.wait(timeout_s) or future.done()


class SafetyNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("safety_node", **kwargs)
        p = self.declare_parameter
        p("robot_description_path", "")
        p("controller_name", "arm_controller")
        p("input_name", "safety")
        p("interface", "action")
        p("heartbeat_timeout_s", 0.5)
        p("joint_state_timeout_s", 0.5)
        p("max_start_jump_rad", 0.25)
        p("start_jump_exempt_joints", "")  # comma-separated joint names
        p("server_wait_s", 2.0)
        g = self.get_parameter
        self.interface = g("interface").value
        if self.interface not in ("topic", "action"):
            raise ValueError(
                f"parameter interface must be 'topic' or 'action', got {self.interface!r}"
            )
        self.robot = RobotDescription.from_yaml(
            g("robot_description_path").value or default_robot_path()
        )
        names = g("start_jump_exempt_joints").value.split(",")
        exempt = tuple(n.strip() for n in names if n.strip())
        unknown = sorted(set(exempt) - set(self.robot.joint_names))
        if unknown:
            raise ValueError(
                f"start_jump_exempt_joints names unknown joints {unknown!r}; the robot has "
                f"{list(self.robot.joint_names)}"
            )
        self.safety_config = SafetyConfig(
            max_start_jump_rad=g("max_start_jump_rad").value, start_jump_exempt_joints=exempt
        )
        self.supervisor = SafetySupervisor(heartbeat_timeout_s=g("heartbeat_timeout_s").value)
        self.joint_state_timeout_s = float(g("joint_state_timeout_s").value)
        ctrl, inp = g("controller_name").value, g("input_name").value
        self._cb = ReentrantCallbackGroup()
        self._lock = threading.Lock()
        self._q: np.ndarray | None = None  # (J,) robot order
        self._q_stamp_s = -1.0
        self._downstream: list = []  # ClientGoalHandles of running downstream goals
        self._motion_until_s = 0.0  # topic mode: when the last forwarded trajectory ends
        self._stop_reason = ""
        self._rejection = ""  # why the last trajectory was rejected, "" if accepted
        self._last_status: tuple | None = None

        self.create_subscription(
            JointState, "joint_states", self._on_joint_state, sensor_qos(), callback_group=self._cb
        )
        self.create_subscription(
            Empty, "heartbeat", self._on_heartbeat, command_qos(), callback_group=self._cb
        )
        self.create_subscription(
            Bool, "e_stop", self._on_estop, command_qos(), callback_group=self._cb
        )
        self.create_service(Trigger, "reset_e_stop", self._on_reset, callback_group=self._cb)
        self._status_pub = self.create_publisher(SafetyStatus, "safety_status", status_qos())
        self._out_pub = self.create_publisher(
            JointTrajectoryMsg, f"{ctrl}/joint_trajectory", command_qos()
        )
        if self.interface == "topic":
            self.create_subscription(
                JointTrajectoryMsg,
                f"{inp}/joint_trajectory",
                self._on_trajectory,
                command_qos(),
                callback_group=self._cb,
            )
        else:
            self._client = ActionClient(
                self,
                FollowJointTrajectory,
                f"{ctrl}/follow_joint_trajectory",
                callback_group=self._cb,
            )
            self._server = ActionServer(
                self,
                FollowJointTrajectory,
                f"{inp}/follow_joint_trajectory",
                execute_callback=self._execute,
                goal_callback=lambda _g: GoalResponse.ACCEPT,
                cancel_callback=lambda _g: CancelResponse.ACCEPT,
                callback_group=self._cb,
            )
        self.create_timer(0.05, self._monitor, callback_group=self._cb)
        self._publish_status(force=True)
        self.get_logger().info(
            f"safety layer up: interface {self.interface!r}, {inp!r} -> {ctrl!r}, heartbeat "
            f"timeout {self.supervisor.heartbeat_timeout_s} s"
        )

    # -- inputs
    def _on_joint_state(self, msg: JointState) -> None:
        names = list(msg.name)
        try:
            q = np.array([msg.position[names.index(n)] for n in self.robot.joint_names])
        except (ValueError, IndexError):
            self.get_logger().error(
                f"joint_states names {names!r} lack some of {list(self.robot.joint_names)!r}",
                throttle_duration_sec=5.0,
            )
            return
        with self._lock:
            self._q, self._q_stamp_s = q, time.monotonic()

    def _on_heartbeat(self, _msg: Empty) -> None:
        self.supervisor.heartbeat(time.monotonic())

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            self.supervisor.trigger_estop("e_stop topic")
            self._stop("e-stop latched")
            self._publish_status(force=True)

    def _on_reset(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        resp.message = self.supervisor.reset_estop()
        resp.success = True
        self.get_logger().info(resp.message)
        self._publish_status(force=True)
        return resp

    # -- checks
    def _measured_q(self) -> np.ndarray | None:
        with self._lock:
            fresh = time.monotonic() - self._q_stamp_s <= self.joint_state_timeout_s
            return self._q if fresh else None

    def _check(self, msg: JointTrajectoryMsg) -> tuple[SafetyReport | None, str]:
        """(report, reason); reason is non-empty when the trajectory must not pass."""
        ok, why = self.supervisor.may_forward(time.monotonic())
        if not ok:
            return None, why
        try:
            names, q, t, v = msg_arrays(msg)
        except ValueError as exc:
            return None, str(exc)
        if len(t) == 0:
            return None, "trajectory has no points"
        report = check_trajectory(
            names, q, t, self.robot, self._measured_q(), v, self.safety_config
        )
        return report, report.summary()

    def _reject(self, why: str) -> None:
        self.get_logger().error(f"trajectory rejected: {why}")
        self._rejection = why
        self._publish_status(force=True)

    # -- topic interface
    def _on_trajectory(self, msg: JointTrajectoryMsg) -> None:
        _report, why = self._check(msg)
        if why:
            self._reject(why)
            return
        self._accept()
        self._out_pub.publish(msg)
        t_end = msg.points[-1].time_from_start
        self._motion_until_s = time.monotonic() + t_end.sec + 1e-9 * t_end.nanosec

    def _accept(self) -> None:
        self._rejection = ""
        self._stop_reason = ""
        self._publish_status(force=True)

    # -- action interface
    def _execute(self, goal_handle: object) -> FollowJointTrajectory.Result:
        result = FollowJointTrajectory.Result()
        report, why = self._check(goal_handle.request.trajectory)
        if why:
            self._reject(why)
            joints = report is not None and any(v.rule == "joint_names" for v in report.violations)
            result.error_code = INVALID_JOINTS if joints else INVALID_GOAL
            result.error_string = f"safety: {why}"
            goal_handle.abort()
            return result
        if not self._client.wait_for_server(timeout_sec=self.get_parameter("server_wait_s").value):
            result.error_code, result.error_string = (
                INVALID_GOAL,
                "safety: controller not available",
            )
            goal_handle.abort()
            return result
        self._accept()
        send = self._client.send_goal_async(
            goal_handle.request,
            feedback_callback=lambda fb: goal_handle.publish_feedback(fb.feedback),
        )
        if not wait_future(send, 5.0) or not send.result().accepted:
            result.error_code, result.error_string = (
                INVALID_GOAL,
                "safety: controller rejected goal",
            )
            goal_handle.abort()
            return result
        down = send.result()
        with self._lock:
            self._downstream.append(down)
        get_result = down.get_result_async()
        finished = threading.Event()
        get_result.add_done_callback(lambda _f: finished.set())
        try:
            while not finished.wait(0.05):
                if goal_handle.is_cancel_requested:
                    wait_future(down.cancel_goal_async(), 2.0)
                    wait_future(get_result, 2.0)
                    goal_handle.canceled()
                    result.error_string = "canceled by the client; the arm holds"
                    return result
        finally:
            with self._lock:
                self._downstream.remove(down)
        wrapped = get_result.result()
        result.error_code = wrapped.result.error_code
        result.error_string = wrapped.result.error_string
        if self._stop_reason:
            result.error_string = f"safety stopped the motion: {self._stop_reason}"
            goal_handle.abort()
        elif wrapped.status == GoalStatus.STATUS_SUCCEEDED and result.error_code == 0:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    # -- stopping and status
    def _stop(self, reason: str) -> None:
        """Cancel running goals and tell the controller to hold."""
        self._stop_reason = reason
        with self._lock:
            running = list(self._downstream)
        for handle in running:
            handle.cancel_goal_async()
        hold = JointTrajectoryMsg()
        hold.joint_names = list(self.robot.joint_names)
        self._out_pub.publish(hold)  # empty trajectory: the JTC holds its position
        self._motion_until_s = 0.0
        self.get_logger().warning(f"motion stopped: {reason}")

    def _monitor(self) -> None:
        now = time.monotonic()
        ok, why = self.supervisor.may_forward(now)
        with self._lock:
            moving = bool(self._downstream) or now < self._motion_until_s
        if not ok and moving:
            self._stop(why)
        self._publish_status()

    def _publish_status(self, force: bool = False) -> None:
        now = time.monotonic()
        state = (self.supervisor.estop_latched, self.supervisor.heartbeat_ok(now), self._rejection)
        if not force and state == self._last_status:
            return
        self._last_status = state
        msg = SafetyStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.estop_latched, msg.heartbeat_ok, msg.last_rejection = state
        self._status_pub.publish(msg)


def main(args: list[str] | None = None) -> None:
    run_node(SafetyNode, num_threads=4, args=args)


if __name__ == "__main__":
    main()
