"""The goal runner's arm over ROS: camera and joint state in, trajectories out, a verifier.

:class:`RosArm` is the ROS adapter of ``executor_core.goal_runner.Arm`` that executor_node
hands to the runner; :class:`SensorCache` holds what the node's subscriptions received.
Everything here blocks only the goal's worker thread; the node's callbacks never wait.

- ``observe``: the latest ``image_raw`` (rectified when configured) and ``joint_states``.
  Before the first image and the first joint state it waits up to ``max_image_age_s``
  each, then aborts naming what is missing. After a motion it waits up to
  ``max_image_age_s`` for a frame that arrived after the motion ended (the arm no longer
  moving in it), else takes the latest; an image older than ``max_image_age_s`` (header
  stamp against the node's clock) aborts the goal naming the age, and so does one stamped
  more than ``max_clock_skew_s`` in the future (a camera clock ahead of the node's, or a
  frozen frame with a made-up stamp: its age says nothing about when it was taken).
- ``send``: ``output_mode`` ``action`` sends a FollowJointTrajectory goal to
  ``<controller>/follow_joint_trajectory`` and waits for its result (a cancel or the
  deadline cancels that goal); ``topic`` publishes on ``<controller>/joint_trajectory``
  and waits the trajectory's duration (a cancel publishes an empty trajectory, the
  controller's "hold").
- ``reached``: waits up to ``settle_timeout_s`` for ``joint_states`` to come within the
  tolerance of the last point.
- ``verdict``: asks the ``success_service`` (std_srvs/Trigger), or None without one.

``recording`` (executor_node's ``GoalRecording``) is told each trajectory sent, the empty
"hold" included, and the stamp of each observed frame; the default records nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from control_msgs.action import FollowJointTrajectory
from rclpy.action import ActionClient
from rclpy.client import Client
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.task import Future
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from executor_bringup.polled_subscription import LatestMessage
from executor_bringup.trajectory_conversion import duration_to_s, trajectory_to_msg
from executor_core.goal_runner import GoalAborted, GoalCanceled, Guard, Verdict
from executor_core.types import JointTrajectory, Observation

# How long the task verifier may take to be discovered and to answer one request. A sim
# predicate answers in milliseconds; the bound only turns a dead verifier into a message.
VERIFIER_WAIT_S = 5.0
# How long a goal waits for the FollowJointTrajectory server to be discovered (the first goal
# right after bringup can come before discovery ends on a loaded host); a cancel or the
# goal's deadline ends the wait sooner.
SERVER_WAIT_S = 5.0
POLL_S = 0.01


def wait_future(future: Future, timeout_s: float) -> bool:
    """Block this (non-spinning) thread until the future is done; False on timeout."""
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    return done.wait(timeout_s) or future.done()


class SensorCache:
    """The latest camera frame (written by the image callback) and joint state (taken on
    demand from a polled subscription, when one is given), read by the goal's worker."""

    def __init__(
        self, joint_names: tuple[str, ...], joint_states: LatestMessage | None = None
    ) -> None:
        self.joint_names = joint_names
        # joint_states arrive at 50 Hz or more; polling them saves an executor wake-up each
        self.joint_states = joint_states
        self._lock = threading.Lock()
        self.image: np.ndarray | None = None  # (H, W, 3) uint8 RGB
        self.image_stamp_s = 0.0
        self.image_count = 0  # frames accepted so far
        self.q: np.ndarray | None = None  # (J,) robot order
        self.images_rejected = 0
        self.last_image_error = ""  # why the last rejected image was rejected

    def reject_image(self, error: str) -> None:
        with self._lock:
            self.images_rejected += 1
            self.last_image_error = error

    def put_image(self, rgb: np.ndarray, stamp_s: float) -> None:
        with self._lock:
            self.image, self.image_stamp_s = rgb, stamp_s
            self.image_count += 1

    def put_joint_state(self, names: list[str], positions: list[float]) -> None:
        try:
            q = np.array([positions[names.index(n)] for n in self.joint_names])
        except (ValueError, IndexError):
            return  # another arm's or a partial joint state
        with self._lock:
            self.q = q

    def image_now(self) -> tuple[np.ndarray | None, float, int]:
        with self._lock:
            return self.image, self.image_stamp_s, self.image_count

    def joint_positions_rad(self) -> np.ndarray | None:
        taken = self.joint_states.take() if self.joint_states is not None else None
        if taken is not None:
            msg, _received_s = taken
            self.put_joint_state(list(msg.name), list(msg.position))
        with self._lock:
            return None if self.q is None else self.q.copy()


class ArmRecording(Protocol):
    def command(self, msg: JointTrajectoryMsg) -> None:
        """A trajectory that went to the controller."""

    def observed(self, stamp_s: float) -> None:
        """The stamp of the camera frame an observation used."""


class NoRecording:
    def command(self, msg: JointTrajectoryMsg) -> None:
        pass

    def observed(self, stamp_s: float) -> None:
        pass


def model_input_for(
    rectifier: Callable[[np.ndarray], np.ndarray] | None,
) -> Callable[[np.ndarray], np.ndarray]:
    """The frame the models see: ``rectifier``'s output (``calibration.rectify``), or the
    camera frame itself without one. A frame the rectifier refuses (another size than its
    calibration) aborts the goal, naming why."""
    if rectifier is None:
        return lambda image_rgb: image_rgb

    def rectified(image_rgb: np.ndarray) -> np.ndarray:
        try:
            return rectifier(image_rgb)
        except ValueError as exc:
            raise GoalAborted(f"cannot rectify image_raw: {exc}") from None

    return rectified


@dataclass(frozen=True)
class RosArmConfig:
    output_mode: str  # "action" | "topic"
    action_name: str  # the FollowJointTrajectory action, for messages
    max_image_age_s: float
    max_clock_skew_s: float  # how far in the future an image stamp may be
    settle_timeout_s: float
    verifier_name: str  # resolved service name, "" without a verifier

    def __post_init__(self) -> None:
        for name in ("max_image_age_s", "max_clock_skew_s", "settle_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


class RosArm:
    """The runner's Arm over the node's subscriptions, action client and verifier."""

    def __init__(
        self,
        node: Node,
        sensors: SensorCache,
        config: RosArmConfig,
        fjt: ActionClient,
        hold_pub: Publisher,
        verifier: Client | None,
        model_input: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        self.node, self.sensors, self.config = node, sensors, config
        self.fjt, self.hold_pub, self.verifier = fjt, hold_pub, verifier
        self.model_input = model_input
        self.recording: ArmRecording = NoRecording()
        self._seen_after_motion: int | None = None  # image count when the last motion ended

    # -- observe
    def observe(self, guard: Guard) -> Observation:
        image, stamp_s = self._fresh_frame(guard)
        self.recording.observed(stamp_s)
        image = self.model_input(image)
        return Observation(image, stamp_s, self._joint_state(guard), self.sensors.joint_names)

    def _fresh_frame(self, guard: Guard) -> tuple[np.ndarray, float]:
        """The latest frame; after a motion, one that arrived after it ended if one comes
        within max_image_age_s (the camera's period, at most), else the latest."""
        limit_s = self.config.max_image_age_s
        end = time.monotonic() + limit_s
        while True:
            image, stamp_s, count = self.sensors.image_now()
            after_motion = self._seen_after_motion is None or count > self._seen_after_motion
            if (image is not None and after_motion) or time.monotonic() > end:
                break
            guard.check()
            time.sleep(POLL_S)
        if image is None:
            error = self.sensors.last_image_error
            why = f" (last one rejected: {error})" if error else ""
            raise GoalAborted(f"no valid image received on image_raw yet{why}")
        age_s = self.node.get_clock().now().nanoseconds * 1e-9 - stamp_s
        if age_s > limit_s:
            raise GoalAborted(f"stale image: age {age_s:.3f} s > max_image_age_s {limit_s:.3f}")
        skew_s = self.config.max_clock_skew_s
        if -age_s > skew_s:
            raise GoalAborted(
                f"image stamped {-age_s:.3f} s in the future > max_clock_skew_s {skew_s:.3f}: "
                "the camera's clock is ahead of this node's (or the stamp is wrong)"
            )
        return np.ascontiguousarray(image), stamp_s

    def _joint_state(self, guard: Guard) -> np.ndarray:
        end = time.monotonic() + self.config.max_image_age_s
        while (q := self.sensors.joint_positions_rad()) is None:
            if time.monotonic() > end:
                raise GoalAborted(
                    f"no joint_states with the joints {list(self.sensors.joint_names)} received"
                )
            guard.check()
            time.sleep(POLL_S)
        return q

    # -- send
    def send(self, trajectory: JointTrajectory, guard: Guard, tolerate_goal_miss: bool) -> None:
        msg = trajectory_to_msg(trajectory)
        try:
            if self.config.output_mode == "topic":
                self._publish_and_wait(msg, guard)
            else:
                self._send_goal_and_wait(msg, guard, tolerate_goal_miss)
        finally:
            _, _, self._seen_after_motion = self.sensors.image_now()

    def _publish_and_wait(self, msg: JointTrajectoryMsg, guard: Guard) -> None:
        self.hold_pub.publish(msg)
        self.recording.command(msg)
        end = time.monotonic() + duration_to_s(msg.points[-1].time_from_start)
        while time.monotonic() < end:
            try:
                guard.check()
            except (GoalCanceled, GoalAborted):
                self.hold()
                raise
            time.sleep(POLL_S)

    def _send_goal_and_wait(
        self, msg: JointTrajectoryMsg, guard: Guard, tolerate_goal_miss: bool
    ) -> None:
        self._wait_for_server(guard)
        send = self.fjt.send_goal_async(FollowJointTrajectory.Goal(trajectory=msg))
        self.recording.command(msg)
        if not wait_future(send, 5.0):
            raise GoalAborted("FollowJointTrajectory goal not answered in 5 s")
        handle = send.result()
        if not handle.accepted:
            raise GoalAborted("FollowJointTrajectory goal rejected")
        get_result = handle.get_result_async()
        finished = threading.Event()
        get_result.add_done_callback(lambda _f: finished.set())
        while not finished.wait(POLL_S):
            try:
                guard.check()
            except (GoalCanceled, GoalAborted):
                wait_future(handle.cancel_goal_async(), 2.0)
                # the controller stops and holds on a cancel: recorded as the empty command
                self.recording.command(JointTrajectoryMsg(joint_names=list(msg.joint_names)))
                raise
        response = get_result.result()
        res = response.result
        if tolerate_goal_miss and res.error_code == res.GOAL_TOLERANCE_VIOLATED:
            # A closed-loop chunk that ends a little off its goal is what the next chunk,
            # predicted from the measured state, corrects; only the last one is verified.
            self.node.get_logger().info(
                f"chunk ended outside its goal tolerance: {res.error_string}"
            )
            return
        if res.error_code != res.SUCCESSFUL or response.status != 4:  # STATUS_SUCCEEDED
            raise GoalAborted(
                f"trajectory failed (error_code {res.error_code}): {res.error_string}"
            )

    def _wait_for_server(self, guard: Guard) -> None:
        end = time.monotonic() + SERVER_WAIT_S
        while not self.fjt.server_is_ready():
            guard.check()  # nothing was sent yet: a cancel needs no hold
            if time.monotonic() >= end:
                raise GoalAborted(
                    f"no FollowJointTrajectory server at {self.config.action_name!r} "
                    f"in {SERVER_WAIT_S:g} s"
                )
            time.sleep(POLL_S)

    def hold(self) -> None:
        """An empty trajectory: the controller's "stop and hold here"."""
        msg = JointTrajectoryMsg(joint_names=list(self.sensors.joint_names))
        self.hold_pub.publish(msg)
        self.recording.command(msg)

    # -- verify
    def reached(self, target_rad: np.ndarray, tolerance_rad: float, guard: Guard) -> float:
        end = time.monotonic() + self.config.settle_timeout_s
        err = float("inf")
        while True:
            q = self.sensors.joint_positions_rad()
            if q is not None:
                err = float(np.max(np.abs(q - target_rad)))
                if err <= tolerance_rad:
                    return err
            if time.monotonic() > end or guard.remaining_s <= 0:
                return err
            time.sleep(POLL_S)

    def verifier_missing(self) -> str:
        return (
            f"task verifier service {self.config.verifier_name!r} (parameter success_service) "
            f"is not available after {VERIFIER_WAIT_S} s"
        )

    def check_verifier(self) -> None:
        """Fail before the arm moves: a goal that cannot be judged must not run."""
        if self.verifier is not None and not self.verifier.wait_for_service(
            timeout_sec=VERIFIER_WAIT_S
        ):
            raise GoalAborted(self.verifier_missing())

    def verdict(self, guard: Guard) -> Verdict | None:
        if self.verifier is None:
            return None
        self.check_verifier()
        future = self.verifier.call_async(Trigger.Request())
        answered = threading.Event()
        future.add_done_callback(lambda _f: answered.set())
        end = time.monotonic() + VERIFIER_WAIT_S
        while not answered.wait(POLL_S):
            try:
                guard.check()
                if time.monotonic() > end:
                    raise GoalAborted(
                        f"task verifier service {self.config.verifier_name!r} did not answer "
                        f"within {VERIFIER_WAIT_S} s"
                    )
            except (GoalCanceled, GoalAborted):
                self.verifier.remove_pending_request(future)
                raise
        response = future.result()
        return Verdict(bool(response.success), str(response.message), self.config.verifier_name)
