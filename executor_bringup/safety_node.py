"""safety_node: the only way a trajectory reaches the arm.

Every trajectory is checked by ``executor_core.safety`` against the robot description
(limits, NaN/inf, joint-name set, jump from the measured ``joint_states``) and is either
forwarded unchanged or rejected with a message naming the joint, point and value; nothing
is clipped. Forwarding is gated by two latches:

- dead-man: ``heartbeat`` (std_msgs/Empty) must be fresher than ``heartbeat_timeout_s``
  (0 disables it, for bench setups only), counted from when the middleware received it.
  When it goes stale while a trajectory runs or waits for its start, motion is stopped.
- e-stop: ``e_stop`` (std_msgs/Bool, ``true`` latches). Only the ``reset_e_stop`` service
  (std_srvs/Trigger) clears it.

Both inputs and the dead-man check run on their own thread, node and callback group
(``executor_bringup.deadman_thread``), never queued behind the other callbacks; the node
itself spins on a ``SingleThreadedExecutor`` (the action proxy is a coroutine) and wakes
for nothing at idle: it takes the newest ``joint_states`` when it checks a trajectory
(``executor_bringup.polled_subscription``).

A trajectory starts at its ``header.stamp`` (zero: on arrival), as the
joint_trajectory_controller does. The dead-man covers it from arrival to the end of its
motion, so a stale heartbeat before a deferred start stops it before it starts; a stamp
more than ``max_future_stamp_s`` ahead of the node's clock is rejected.

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
from collections.abc import Callable

import numpy as np
import rclpy.logging
from action_msgs.msg import GoalStatus
from control_msgs.action import FollowJointTrajectory
from executor_interfaces.msg import SafetyStatus
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from executor_bringup.action_client import SafeActionClient
from executor_bringup.deadman_thread import MAX_WAIT_S, DeadmanThread
from executor_bringup.node_main import run_node
from executor_bringup.polled_subscription import LatestMessage
from executor_bringup.qos import command_qos, sensor_qos, status_qos
from executor_bringup.trajectory_conversion import duration_to_s, msg_arrays
from executor_core.config_cli import require_non_negative
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.safety import SafetyConfig, SafetyReport, SafetySupervisor, check_trajectory

logger = logging.getLogger(__name__)

INVALID_GOAL = FollowJointTrajectory.Result.INVALID_GOAL
INVALID_JOINTS = FollowJointTrajectory.Result.INVALID_JOINTS


# The dead-man thread's next check: just after the heartbeat goes stale, soon while a stop
# is in flight, and at the latest after MAX_WAIT_S (deadman_thread) otherwise.
STALE_MARGIN_S = 0.001
STOP_RETRY_S = 0.05

# How long the action proxy waits for the controller to accept a goal, and for its result
# after a cancel, before it gives up on the controller (seconds).
SEND_TIMEOUT_S = 5.0
CANCEL_TIMEOUT_S = 2.0


async def await_within(future: Future, timeout_s: float, wake: Callable[[], None]) -> bool:
    """Await ``future`` from a coroutine on the node's executor; False if it was not done
    within ``timeout_s`` (the future is then cancelled, and ``wake`` resumes the awaiter)."""

    def give_up() -> None:
        future.cancel()
        wake()

    timer = threading.Timer(timeout_s, give_up)
    timer.daemon = True
    timer.start()
    try:
        await future
    finally:
        timer.cancel()
    return future.done()


def _set_done(future: Future) -> None:
    """Complete ``future`` once (later calls do nothing)."""
    if not future.done():
        future.set_result(None)


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
        p("zero_time_start_tolerance_rad", 0.01)
        p("max_future_stamp_s", 1.0)
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
        self.safety_config = SafetyConfig(
            max_start_jump_rad=g("max_start_jump_rad").value,
            start_jump_exempt_joints=self._exempt_joints(g("start_jump_exempt_joints").value),
            zero_time_start_tolerance_rad=g("zero_time_start_tolerance_rad").value,
        )
        self.max_future_stamp_s = require_non_negative(
            "max_future_stamp_s", float(g("max_future_stamp_s").value)
        )
        self.supervisor = SafetySupervisor(heartbeat_timeout_s=g("heartbeat_timeout_s").value)
        self.joint_state_timeout_s = float(g("joint_state_timeout_s").value)
        ctrl, inp = g("controller_name").value, g("input_name").value
        self._cb = ReentrantCallbackGroup()
        self._lock = threading.RLock()  # downstream goals, latches, status
        self._downstream: list = []  # ClientGoalHandles of running downstream goals
        self._motion_until_s = 0.0  # topic mode: when the last forwarded trajectory ends
        self._stop_reason = ""
        self._rejection = ""  # why the last trajectory was rejected, "" if accepted
        self._last_status: tuple | None = None
        self._wakeups: dict[int, Future] = {}  # proxy goal -> its relay's wake-up
        self._cancel_wanted: set[int] = set()  # proxy goals the client asked to cancel

        # Taken when a trajectory is checked: no executor wake-up per message (50 Hz+).
        self._joint_states = LatestMessage(self, JointState, "joint_states", sensor_qos(1))
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
            self._client = SafeActionClient(
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
                cancel_callback=self._on_cancel,
                callback_group=self._cb,
            )
        self._publish_status(force=True)
        self.deadman = DeadmanThread(self, self._on_heartbeat, self._on_estop, self._deadman_check)
        self.get_logger().info(
            f"safety layer up: interface {self.interface!r}, {inp!r} -> {ctrl!r}, heartbeat "
            f"timeout {self.supervisor.heartbeat_timeout_s} s"
        )

    def _exempt_joints(self, text: str) -> tuple[str, ...]:
        """``start_jump_exempt_joints`` (comma-separated) as a tuple of known joints."""
        exempt = tuple(n.strip() for n in text.split(",") if n.strip())
        unknown = sorted(set(exempt) - set(self.robot.joint_names))
        if unknown:
            raise ValueError(
                f"start_jump_exempt_joints names unknown joints {unknown!r}; the robot has "
                f"{list(self.robot.joint_names)}"
            )
        return exempt

    def destroy_node(self) -> None:
        deadman = getattr(self, "deadman", None)
        if deadman is not None:
            deadman.stop()
            # Not the node's logger: on SIGINT the context is gone and rosout with it.
            rclpy.logging.get_logger(f"{self.get_name()}.deadman").info(deadman.stats.summary())
        super().destroy_node()

    # -- inputs
    def _on_heartbeat(self, received_s: float) -> None:
        """Dead-man thread: a heartbeat that the middleware received at ``received_s``."""
        with self._lock:
            self.supervisor.heartbeat(received_s)

    def _on_estop(self) -> None:
        """Dead-man thread: ``e_stop`` said true."""
        with self._lock:
            self.supervisor.trigger_estop("e_stop topic")
        self._stop("e-stop latched")
        self._publish_status(force=True)

    def _on_reset(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        with self._lock:
            resp.message = self.supervisor.reset_estop()
        resp.success = True
        self.get_logger().info(resp.message)
        self._publish_status(force=True)
        return resp

    # -- checks
    def _measured_q(self) -> np.ndarray | None:
        """The newest joint state (robot order) if younger than joint_state_timeout_s."""
        latest = self._joint_states.take()
        if latest is None or time.monotonic() - latest[1] > self.joint_state_timeout_s:
            return None
        msg, names = latest[0], list(latest[0].name)
        try:
            return np.array([msg.position[names.index(n)] for n in self.robot.joint_names])
        except (ValueError, IndexError):
            self.get_logger().error(
                f"joint_states names {names!r} lack some of {list(self.robot.joint_names)!r}",
                throttle_duration_sec=5.0,
            )
            return None

    def _start_delay_s(self, msg: JointTrajectoryMsg) -> float:
        """Seconds from now until the trajectory starts (its stamp; 0 for a zero stamp,
        negative for a stamp in the past)."""
        stamp = msg.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            return 0.0
        return duration_to_s(stamp) - self.get_clock().now().nanoseconds * 1e-9

    def _check(self, msg: JointTrajectoryMsg) -> tuple[SafetyReport | None, str]:
        """(report, reason); reason is non-empty when the trajectory must not pass."""
        with self._lock:
            ok, why = self.supervisor.may_forward(time.monotonic())
        if not ok:
            return None, why
        delay_s = self._start_delay_s(msg)
        if delay_s > self.max_future_stamp_s:
            return None, (
                f"header.stamp is {delay_s:.3f} s in the future, beyond max_future_stamp_s "
                f"{self.max_future_stamp_s:.3f} (a trajectory starts at its stamp)"
            )
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
        # The dead-man covers the trajectory from now (it may start later) to its end.
        start_s = time.monotonic() + max(0.0, self._start_delay_s(msg))
        with self._lock:
            self._motion_until_s = start_s + duration_to_s(msg.points[-1].time_from_start)
        self._out_pub.publish(msg)

    def _accept(self) -> None:
        self._rejection = ""
        self._stop_reason = ""
        self._publish_status(force=True)

    # -- action interface
    def _on_cancel(self, goal_handle: object) -> CancelResponse:
        """Accept, and wake the goal's relay, which cancels the downstream goal."""
        key = id(goal_handle)
        with self._lock:
            self._cancel_wanted.add(key)
            wakeup = self._wakeups.get(key)
        if wakeup is not None:
            _set_done(wakeup)
        return CancelResponse.ACCEPT

    def _abort(self, goal_handle: object, code: int, text: str) -> FollowJointTrajectory.Result:
        result = FollowJointTrajectory.Result()
        result.error_code, result.error_string = code, text
        goal_handle.abort()
        return result

    async def _execute(self, goal_handle: object) -> FollowJointTrajectory.Result:
        report, why = self._check(goal_handle.request.trajectory)
        if why:
            self._reject(why)
            joints = report is not None and any(v.rule == "joint_names" for v in report.violations)
            return self._abort(
                goal_handle, INVALID_JOINTS if joints else INVALID_GOAL, f"safety: {why}"
            )
        # Blocks this node's executor only while the controller is missing; the dead-man
        # runs on its own thread.
        if not self._client.wait_for_server(timeout_sec=self.get_parameter("server_wait_s").value):
            return self._abort(goal_handle, INVALID_GOAL, "safety: controller not available")
        self._accept()
        send = self._client.send_goal_async(
            goal_handle.request,
            feedback_callback=lambda fb: goal_handle.publish_feedback(fb.feedback),
        )
        if not await await_within(send, SEND_TIMEOUT_S, self._wake) or not send.result().accepted:
            return self._abort(goal_handle, INVALID_GOAL, "safety: controller rejected goal")
        down = send.result()
        with self._lock:
            self._downstream.append(down)
        try:
            return await self._relay(goal_handle, down)
        finally:
            with self._lock:
                self._downstream.remove(down)

    async def _relay(self, goal_handle: object, down: object) -> FollowJointTrajectory.Result:
        """Wait for the downstream goal's result, or the client's cancel (then cancel it)."""
        get_result = down.get_result_async()
        wakeup: Future = Future()
        get_result.add_done_callback(lambda _f: _set_done(wakeup))
        key = id(goal_handle)
        with self._lock:
            self._wakeups[key] = wakeup
            if key in self._cancel_wanted:
                _set_done(wakeup)
        try:
            await wakeup  # the result, or _on_cancel
        finally:
            with self._lock:
                self._wakeups.pop(key, None)
                self._cancel_wanted.discard(key)
        result = FollowJointTrajectory.Result()
        if not get_result.done():  # the client canceled
            await await_within(down.cancel_goal_async(), CANCEL_TIMEOUT_S, self._wake)
            await await_within(get_result, CANCEL_TIMEOUT_S, self._wake)
            goal_handle.canceled()
            result.error_string = "canceled by the client; the arm holds"
            return result
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

    def _wake(self) -> None:
        if self.executor is not None:
            self.executor.wake()

    # -- stopping and status
    def _stop(self, reason: str) -> None:
        """Cancel running goals and tell the controller to hold."""
        with self._lock:
            self._stop_reason = reason
            running = list(self._downstream)
            self._motion_until_s = 0.0
        for handle in running:
            handle.cancel_goal_async()
        hold = JointTrajectoryMsg()
        hold.joint_names = list(self.robot.joint_names)
        self._out_pub.publish(hold)  # empty trajectory: the JTC holds its position
        self.get_logger().warning(f"motion stopped: {reason}")

    def _deadman_check(self, now_s: float) -> float:
        """Dead-man thread: stop a running or pending motion once the heartbeat is stale;
        returns the seconds until the next check is due."""
        with self._lock:
            ok, why = self.supervisor.may_forward(now_s)
            moving = bool(self._downstream) or now_s < self._motion_until_s
            fresh_for_s = self.supervisor.seconds_until_stale(now_s)
        if not ok and moving:
            self._stop(why)
        self._publish_status()
        if not ok and moving:
            return STOP_RETRY_S  # a cancel in flight: check again soon
        if fresh_for_s is None or fresh_for_s == 0:
            return MAX_WAIT_S
        return fresh_for_s + STALE_MARGIN_S

    def _publish_status(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            sup = self.supervisor
            state = (sup.estop_latched, sup.heartbeat_ok(now), self._rejection)
            if not force and state == self._last_status:
                return
            self._last_status = state
            msg = SafetyStatus()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.estop_latched, msg.heartbeat_ok, msg.last_rejection = state
            self._status_pub.publish(msg)


def main(args: list[str] | None = None) -> None:
    run_node(SafetyNode, args=args)


if __name__ == "__main__":
    main()
