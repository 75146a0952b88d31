"""The ROS side of a joint_trajectory_controller, shared by sim_arm_node and lerobot_arm_node.

:class:`JtcInterfaces` serves ``<controller>/joint_trajectory`` (topic; an empty trajectory
holds where the arm is) and ``<controller>/follow_joint_trajectory`` (action, the
``FollowJointTrajectory`` error codes: INVALID_JOINTS, INVALID_GOAL, OLD_HEADER_TIMESTAMP,
PATH_TOLERANCE_VIOLATED, GOAL_TOLERANCE_VIOLATED; path / goal tolerances where 0 keeps the
default and -1 disables a joint's check). A new trajectory from either interface preempts
the running one, starting from its desired position and velocity (velocity continuity).
The node's control loop calls :meth:`JtcInterfaces.command` once per tick with the
measured positions and sends what it returns to the arm. The rules themselves (validation,
splines, tolerances, outcomes) are the pure ``executor_core.trajectory_control``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from control_msgs.action import FollowJointTrajectory
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import CallbackGroup, MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from executor_bringup.qos import command_qos
from executor_bringup.trajectory_conversion import duration_to_s
from executor_core.config_cli import check_non_negative
from executor_core.robot_description import RobotDescription
from executor_core.trajectory_control import (
    INVALID_GOAL,
    SUCCESSFUL,
    ActiveTrajectory,
    Interpolation,
    check_header_time,
    make_active,
    start_state,
    step_outcome,
    tolerance_vector,
    validate_trajectory,
    validate_velocities,
)

logger = logging.getLogger(__name__)

FEEDBACK_PERIOD_S = 0.05


@dataclass(frozen=True)
class JtcSettings:
    default_goal_tolerance_rad: float = 0.05
    default_path_tolerance_rad: float = 0.0  # 0: the path is not checked by default
    goal_time_tolerance_s: float = 1.0
    interpolation: Interpolation = "spline"

    def __post_init__(self) -> None:
        check_non_negative(  # 0: not checked, as in joint_trajectory_controller
            self,
            "default_goal_tolerance_rad",
            "default_path_tolerance_rad",
            "goal_time_tolerance_s",
        )
        if self.interpolation not in ("spline", "linear"):
            raise ValueError(
                f"interpolation must be 'spline' or 'linear', got {self.interpolation!r}"
            )


class JtcInterfaces:
    """Trajectory topic + FollowJointTrajectory action over the pure controller rules."""

    def __init__(
        self,
        node: LifecycleNode,
        controller_name: str,
        robot: RobotDescription,
        measured: Callable[[], np.ndarray],
        settings: JtcSettings,
        callback_group: CallbackGroup,
    ) -> None:
        self._node = node
        self._robot = robot
        self._names = robot.joint_names
        self._measured = measured
        self._settings = settings
        self._lock = threading.Lock()
        self._active: ActiveTrajectory | None = None
        self.hold_q: np.ndarray | None = None  # None until the first measurement
        self._refusal: str | None = None  # why new trajectories are refused (a stopped arm)
        # Commands on the topic are applied one at a time, in arrival order, as a
        # controller does: in a reentrant group a hold could overtake the trajectory
        # before it, which then ran to its end.
        self._sub = node.create_subscription(
            JointTrajectoryMsg,
            f"{controller_name}/joint_trajectory",
            self._on_topic_trajectory,
            command_qos(),
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self._action = ActionServer(
            node,
            FollowJointTrajectory,
            f"{controller_name}/follow_joint_trajectory",
            execute_callback=self._execute,
            goal_callback=lambda _g: GoalResponse.ACCEPT,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=callback_group,
        )

    def destroy(self) -> None:
        self._action.destroy()
        self._node.destroy_subscription(self._sub)

    # -- the control loop's side
    def command(self, now_s: float, q_rad: np.ndarray) -> np.ndarray:
        """The position to command this tick; decides the running trajectory's outcome."""
        with self._lock:
            active = self._active
            if active is None:
                if self.hold_q is None:
                    self.hold_q = np.array(q_rad, dtype=np.float64)
                return self.hold_q
            target = active.desired(now_s)
            outcome = step_outcome(active, now_s, q_rad, self._names)
            if outcome is not None:
                active.outcome = outcome
                ok = outcome[0] == SUCCESSFUL
                self.hold_q = active.knots_q_rad[-1] if ok else np.array(q_rad, dtype=np.float64)
                self._active = None
            return target

    def preempt(self, why: str, hold_q: np.ndarray | None = None) -> None:
        """Stop following (a hold, deactivate, e-stop): the running goal aborts with ``why``."""
        self.abort(INVALID_GOAL, f"preempted: {why}", hold_q)

    def refuse_goals(self, why: str | None) -> None:
        """Refuse every new trajectory with INVALID_GOAL naming ``why`` (None: accept)."""
        self._refusal = why

    def abort(self, code: int, text: str, hold_q: np.ndarray | None = None) -> None:
        with self._lock:
            if self._active is not None and self._active.outcome is None:
                self._active.outcome = (code, text)
            self._active = None
            if hold_q is None:
                try:
                    hold_q = self._measured()
                except Exception as exc:  # a dead bus: keep the previous hold
                    logger.debug("no measurement for the hold: %s", exc)
            if hold_q is not None:
                self.hold_q = np.array(hold_q, dtype=np.float64)

    # -- trajectories
    def _start(
        self, msg: JointTrajectoryMsg, goal_tol: list, path_tol: list, goal_time_s: float
    ) -> tuple[int, str, ActiveTrajectory | None]:
        names = list(msg.joint_names)
        times = [duration_to_s(pt.time_from_start) for pt in msg.points]
        code, text, q = validate_trajectory(
            names,
            [list(pt.positions) for pt in msg.points],
            times,
            self._names,
            self._robot.lower_rad,
            self._robot.upper_rad,
        )
        if code == SUCCESSFUL:
            code, text, v = validate_velocities(
                names, [list(pt.velocities) for pt in msg.points], self._names
            )
        delay_s = 0.0
        if code == SUCCESSFUL and (msg.header.stamp.sec or msg.header.stamp.nanosec):
            now_ros = self._node.get_clock().now().nanoseconds * 1e-9
            stamp_s = duration_to_s(msg.header.stamp)
            code, text = check_header_time(stamp_s, now_ros, times[-1])
            delay_s = max(0.0, stamp_s - now_ros)
        if code == SUCCESSFUL and self._refusal is not None:
            code, text = INVALID_GOAL, f"arm stopped: {self._refusal}"
        if code != SUCCESSFUL:
            return code, text, None
        s = self._settings
        with self._lock:
            now = time.monotonic()
            q0, v0 = start_state(self._active, now, self._measured())
            if delay_s > 0:  # a deferred start holds first: it starts at rest
                v0 = np.zeros_like(v0)
            if self._active is not None and self._active.outcome is None:
                self._active.outcome = (INVALID_GOAL, "preempted by a new trajectory")
            active = make_active(
                q,
                np.asarray(times),
                now + delay_s,
                q0,
                tolerance_vector(goal_tol, self._names, s.default_goal_tolerance_rad),
                tolerance_vector(path_tol, self._names, s.default_path_tolerance_rad),
                goal_time_s if goal_time_s > 0 else s.goal_time_tolerance_s,
                velocities_rad_s=v,
                start_velocity_rad_s=v0,
                interpolation=s.interpolation,
            )
            self._active = active
        return SUCCESSFUL, "", active

    def _on_topic_trajectory(self, msg: JointTrajectoryMsg) -> None:
        if not msg.points:
            self.preempt("empty trajectory (hold)")
            self._node.get_logger().info("empty trajectory: holding position")
            return
        code, text, _ = self._start(msg, [], [], 0.0)
        if code != SUCCESSFUL:
            self._node.get_logger().error(f"rejected trajectory (code {code}): {text}")

    def _execute(self, goal_handle: object) -> FollowJointTrajectory.Result:
        goal = goal_handle.request
        result = FollowJointTrajectory.Result()
        code, text, active = self._start(
            goal.trajectory,
            [(t.name, t.position) for t in goal.goal_tolerance],
            [(t.name, t.position) for t in goal.path_tolerance],
            duration_to_s(goal.goal_time_tolerance),
        )
        log = self._node.get_logger()
        if active is None:
            result.error_code, result.error_string = code, text
            log.error(f"goal aborted (code {code}): {text}")
            goal_handle.abort()
            return result
        feedback = FollowJointTrajectory.Feedback()
        feedback.joint_names = list(self._names)
        while self._node.context.ok():
            if goal_handle.is_cancel_requested:
                self.preempt("goal canceled")
                goal_handle.canceled()
                result.error_code, result.error_string = SUCCESSFUL, "canceled, holding"
                return result
            if active.outcome is not None:
                break
            self._publish_feedback(goal_handle, feedback, active)
            time.sleep(FEEDBACK_PERIOD_S)
        if active.outcome is None:  # shutting down
            active.outcome = (INVALID_GOAL, "controller shutting down")
        result.error_code, result.error_string = active.outcome
        if result.error_code == SUCCESSFUL:
            goal_handle.succeed()
        else:
            log.warning(f"goal aborted (code {result.error_code}): {result.error_string}")
            goal_handle.abort()
        return result

    def _publish_feedback(self, goal_handle: object, feedback, active: ActiveTrajectory) -> None:
        now = time.monotonic()
        desired, velocity = active.sample(now)
        try:
            q = self._measured()
        except Exception:  # the loop reports a dead bus through the goal's outcome
            return
        feedback.header.stamp = self._node.get_clock().now().to_msg()
        feedback.desired.positions = desired.tolist()
        feedback.desired.velocities = velocity.tolist()
        feedback.actual.positions = np.asarray(q).tolist()
        feedback.error.positions = (desired - q).tolist()
        goal_handle.publish_feedback(feedback)
