"""lerobot_arm_node: a real arm through LeRobot, behaving like joint_trajectory_controller.

Lifecycle (managed) node, the real-arm sibling of ``sim_arm_node``. The arm is any LeRobot
robot with one motor bus, by type and config (``robot_type``: ``so101_follower`` by
default; ``koch_follower`` or another follower is a parameter change), driven through
``robot_drivers.lerobot_arm.LeRobotArm``:

- configure: builds the LeRobot robot (no I/O yet) and the controller interfaces;
- activate: connects (LeRobot's calibration file ``<calibration_dir>/<robot_id>.json``
  must match the motors; no interactive calibration), then one control thread reads the
  arm at ``update_rate_hz``, publishes ``joint_states`` (radians, the robot description's
  joint order, through its joint-space calibration) and sends the controller's setpoint
  through LeRobot's ``send_action`` (its ``max_relative_target`` caps every step);
- ``<controller>/follow_joint_trajectory`` and ``<controller>/joint_trajectory`` with the
  joint_trajectory_controller's semantics (``executor_bringup.jtc_interfaces``: splines at
  the control rate, tolerances and error codes, an empty trajectory holds, preemption with
  velocity continuity);
- stop: deactivate, ``e_stop`` (std_msgs/Bool true) or a lost bus apply ``torque_policy``:
  ``hold`` (torque stays on, the arm holds where it is) or ``torque_off`` (the arm goes
  limp). The running goal aborts naming the reason (a lost bus names each silent motor).
  After an e-stop or a lost bus the node stays stopped (goals are refused, joint_states
  stop with the bus) until it is deactivated and activated again, which reconnects.

All bus I/O happens on the control thread (the bus is not thread-safe); callbacks only
read the latest measurement.

Camera (optional, an alternative to ``camera_node``): ``camera`` is a YAML mapping of a
LeRobot camera config (``{type: opencv, index_or_path: 0, width: 640, height: 480, fps:
30}``, or ``type: intelrealsense`` with its fields); the node connects it on activate and
publishes ``image_raw`` (rgb8, or bgr8 for LeRobot's BGR colour mode) and ``camera_info``
(from ``camera_info_url``, else uncalibrated) at ``camera_rate_hz`` from its own thread.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import yaml
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool

from calibration.camera_info_io import CameraInfoData, load_camera_info
from executor_bringup.camera_node import camera_info_path
from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.jtc_interfaces import JtcInterfaces, JtcSettings
from executor_bringup.node_main import autostart_or_fail, run_node
from executor_bringup.qos import command_qos, sensor_qos
from executor_core.config_cli import require_positive
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.trajectory_control import INVALID_GOAL
from robot_drivers.lerobot_arm import ArmBusError, LeRobotArm, LeRobotArmConfig
from robot_drivers.lerobot_camera import make_lerobot_camera, read_rgb

logger = logging.getLogger(__name__)

INACTIVE = "the controller is not active (activate the lifecycle node)"
MAX_BUS_GLITCHES = 3  # failed reads in a row, every motor answering, before the bus is lost


class LeRobotArmNode(LifecycleNode):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("lerobot_arm_node", **kwargs)
        self.declare_parameter("robot_description_path", "")
        self.declare_parameter("controller_name", "arm_controller")
        self.declare_parameter("robot_type", "so101_follower")
        self.declare_parameter("port", "")
        self.declare_parameter("robot_id", "executor_arm")
        self.declare_parameter("calibration_dir", "")  # "": LeRobot's default
        self.declare_parameter("max_relative_target", 0.0)  # LeRobot units; 0: no cap
        self.declare_parameter("torque_policy", "hold")  # hold | torque_off
        self.declare_parameter("robot_options", "")  # YAML mapping of LeRobot config fields
        self.declare_parameter("joint_map", "")  # YAML mapping: our joint -> LeRobot motor
        self.declare_parameter("connect_retries", 2)
        self.declare_parameter("connect_retry_delay_s", 0.5)
        self.declare_parameter("update_rate_hz", 50.0)
        self.declare_parameter("default_goal_tolerance_rad", 0.05)
        self.declare_parameter("default_path_tolerance_rad", 0.0)
        self.declare_parameter("goal_time_tolerance_s", 1.0)
        self.declare_parameter("interpolation", "spline")  # spline | linear
        self.declare_parameter("camera", "")  # YAML mapping of a LeRobot camera; "": none
        self.declare_parameter("camera_rate_hz", 10.0)
        self.declare_parameter("camera_frame_id", "scene_camera")
        self.declare_parameter("camera_info_url", "")  # file:///... camera_info YAML
        self.declare_parameter("autostart", False)
        self._cb = ReentrantCallbackGroup()
        self._camera = None  # a LeRobot camera, when the camera parameter names one
        self._camera_info: CameraInfoData | None = None
        self._camera_thread: threading.Thread | None = None
        self._arm: LeRobotArm | None = None
        self._jtc: JtcInterfaces | None = None
        self._q: np.ndarray | None = None  # the latest measurement (model radians)
        self._loop_stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._stop_request: str | None = None  # an e-stop, applied by the control thread
        self.stopped_reason: str | None = None  # set once stopped (e-stop, lost bus)
        if self.get_parameter("autostart").value:
            autostart_or_fail(self)

    # -- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.get_parameter
        try:
            path = p("robot_description_path").value or str(default_robot_path())
            self.robot = RobotDescription.from_yaml(path)
            self.rate_hz = float(p("update_rate_hz").value)
            if not 1.0 <= self.rate_hz <= 500.0:
                raise ValueError(f"update_rate_hz must be in [1, 500], got {self.rate_hz!r}")
            settings = JtcSettings(
                float(p("default_goal_tolerance_rad").value),
                float(p("default_path_tolerance_rad").value),
                float(p("goal_time_tolerance_s").value),
                p("interpolation").value,
            )
            config = LeRobotArmConfig(
                robot_type=p("robot_type").value,
                port=p("port").value,
                robot_id=p("robot_id").value,
                calibration_dir=p("calibration_dir").value,
                max_relative_target=float(p("max_relative_target").value),
                torque_policy=p("torque_policy").value,
                joint_map=_yaml_mapping("joint_map", p("joint_map").value),
                robot_options=_yaml_mapping("robot_options", p("robot_options").value),
                connect_retries=int(p("connect_retries").value),
                connect_retry_delay_s=float(p("connect_retry_delay_s").value),
            )
            self._arm = LeRobotArm(config, self.robot)
            self._configure_camera()
        except (ValueError, OSError) as exc:  # bad parameters, missing files: one line
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        ctrl = p("controller_name").value
        self._js_pub = self.create_publisher(JointState, "joint_states", sensor_qos())
        if self._camera is not None:
            self._img_pub = self.create_publisher(Image, "image_raw", sensor_qos())
            self._info_pub = self.create_publisher(CameraInfo, "camera_info", sensor_qos())
        self._estop_sub = self.create_subscription(
            Bool, "e_stop", self._on_estop, command_qos(), callback_group=self._cb
        )
        self._jtc = JtcInterfaces(self, ctrl, self.robot, self._measured, settings, self._cb)
        self._jtc.refuse_goals(INACTIVE)
        self.get_logger().info(
            f"configured: {config.robot_type} on {config.port}, controller {ctrl!r}, "
            f"torque policy {config.torque_policy!r}"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._arm.connect()
            self._q = self._arm.read_positions_rad()
        except (ValueError, OSError) as exc:  # ArmBusError is an OSError (ConnectionError)
            self.get_logger().error(str(exc))
            self._arm.disconnect()
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # the SDK on a garbled bus: fail the transition, say why
            self.get_logger().error(f"connect failed: {type(exc).__name__}: {exc}")
            logger.debug("connect failed", exc_info=True)
            self._arm.disconnect()
            return TransitionCallbackReturn.FAILURE
        if self._camera is not None:
            try:
                self._camera.connect()
            except Exception as exc:  # no such device, busy, wrong mode: say which
                self.get_logger().error(f"camera {self._camera} did not connect: {exc}")
                self._arm.disconnect()
                return TransitionCallbackReturn.FAILURE
        self.stopped_reason, self._stop_request = None, None
        self._jtc.refuse_goals(None)
        self._jtc.abort(INVALID_GOAL, "controller activated", hold_q=self._q)
        self._loop_stop.clear()
        self._loop = threading.Thread(target=self._control_loop, name="arm_control", daemon=True)
        self._loop.start()
        if self._camera is not None:
            self._camera_thread = threading.Thread(
                target=self._camera_loop, name="lerobot_camera", daemon=True
            )
            self._camera_thread.start()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_loop()
        self._jtc.refuse_goals(INACTIVE)
        self._jtc.preempt("controller deactivated", hold_q=self._q)
        self._disconnect()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._jtc.destroy()
        self.destroy_publisher(self._js_pub)
        if self._camera is not None:
            self.destroy_publisher(self._img_pub)
            self.destroy_publisher(self._info_pub)
        self.destroy_subscription(self._estop_sub)
        self._arm = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.shutdown_arm()
        return TransitionCallbackReturn.SUCCESS

    def shutdown_arm(self) -> None:
        """Stop the control thread and let go of the arm by the torque policy (idempotent)."""
        self._stop_loop()
        self._disconnect()

    def _stop_loop(self) -> None:
        self._loop_stop.set()
        for name in ("_loop", "_camera_thread"):
            thread = getattr(self, name)
            if thread is not None:
                thread.join(timeout=5.0)
                if thread.is_alive():
                    self.get_logger().error(f"thread {thread.name} did not stop within 5 s")
                setattr(self, name, None)
        if self._camera is not None and self._camera.is_connected:
            self._camera.disconnect()

    def _disconnect(self) -> None:
        if self._arm is not None and self._arm.is_connected:
            self._arm.disconnect()  # applies the torque policy

    # -- inputs
    def _measured(self) -> np.ndarray:
        q = self._q
        if q is None:
            raise RuntimeError("no joint measurement yet")
        return q

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            self._stop_request = "e-stop"

    # -- the control thread: all bus I/O
    def _control_loop(self) -> None:
        period_s = 1.0 / self.rate_hz
        next_s = time.monotonic()
        q_prev, t_prev = self._q, time.monotonic()
        glitches = 0
        while not self._loop_stop.is_set() and self.context.ok():
            try:
                q = self._arm.read_positions_rad()
                now = time.monotonic()
                self._q = q
                if self._stop_request is not None and self.stopped_reason is None:
                    self._stop(self._stop_request)
                if self.stopped_reason is None:
                    self._arm.send_positions_rad(self._jtc.command(now, q))
                glitches = 0
            except ArmBusError as exc:
                # A lost reply while every motor still answers a ping is a glitch; a
                # silent motor, or glitches in a row, is a lost bus.
                glitches += 1
                if exc.silent_motors or glitches > MAX_BUS_GLITCHES:
                    self._on_bus_lost(exc)
                    return
                self.get_logger().warning(f"bus glitch {glitches}: {exc}")
                self._loop_stop.wait(period_s)
                continue
            self._publish(q, (q - q_prev) / max(now - t_prev, 1e-6))
            q_prev, t_prev = q, now
            next_s = max(next_s + period_s, time.monotonic())
            self._loop_stop.wait(max(0.0, next_s - time.monotonic()))

    def _stop(self, reason: str) -> None:
        policy = self._arm.config.torque_policy
        self.stopped_reason = f"{reason} ({policy}): deactivate and activate to resume"
        self._jtc.refuse_goals(self.stopped_reason)
        self.get_logger().error(f"arm stopped: {self.stopped_reason}")
        self._arm.stop()  # the torque policy first, then the goal's answer
        self._jtc.preempt(self.stopped_reason, hold_q=self._q)

    def _on_bus_lost(self, exc: ArmBusError) -> None:
        self.stopped_reason = str(exc)
        self._jtc.refuse_goals(str(exc))
        self.get_logger().error(f"arm stopped: {exc}")
        try:  # the motors that still answer follow the torque policy, then the goal aborts
            self._arm.stop()
        except (ArmBusError, OSError, RuntimeError) as stop_exc:
            self.get_logger().error(f"torque policy not applied on the lost bus: {stop_exc}")
        self._jtc.abort(INVALID_GOAL, str(exc), hold_q=self._q)

    # -- the camera (optional): its own thread
    def _configure_camera(self) -> None:
        p = self.get_parameter
        spec = _yaml_mapping("camera", p("camera").value)
        self._camera = make_lerobot_camera(spec) if spec else None
        if self._camera is None:
            return
        require_positive("camera_rate_hz", float(p("camera_rate_hz").value))
        path = camera_info_path(p("camera_info_url").value)
        self._camera_info = load_camera_info(path) if path else None

    def _camera_loop(self) -> None:
        period_s = 1.0 / float(self.get_parameter("camera_rate_hz").value)
        color = str(getattr(self._camera, "color_mode", "rgb")).lower()
        encoding = "bgr8" if color.endswith("bgr") else "rgb8"
        next_s = time.monotonic()
        while not self._loop_stop.is_set() and self.context.ok():
            try:
                self._publish_frame(read_rgb(self._camera), encoding)
            except Exception as exc:  # keep the arm running; the camera error is visible
                self.get_logger().error(f"camera read failed: {exc}", throttle_duration_sec=5.0)
            next_s = max(next_s + period_s, time.monotonic())
            self._loop_stop.wait(max(0.0, next_s - time.monotonic()))

    def _publish_frame(self, frame: np.ndarray, encoding: str) -> None:
        msg = fill_image_msg(Image(), frame, encoding)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.get_parameter("camera_frame_id").value
        info = CameraInfo(header=msg.header, width=msg.width, height=msg.height)
        calibrated = self._camera_info
        if calibrated is not None and calibrated.image_size_px != (msg.width, msg.height):
            self.get_logger().error(
                f"camera_info is for {calibrated.image_size_px} but frames are "
                f"{(msg.width, msg.height)}; not publishing a wrong calibration",
                throttle_duration_sec=5.0,
            )
        elif calibrated is not None:
            for key, value in calibrated.as_msg_fields().items():
                setattr(info, key, value)
        self._img_pub.publish(msg)
        self._info_pub.publish(info)

    def _publish(self, q: np.ndarray, qd: np.ndarray) -> None:
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = list(self.robot.joint_names)
        msg.position = q.tolist()
        msg.velocity = qd.tolist()
        self._js_pub.publish(msg)


def _yaml_mapping(name: str, text: str) -> dict:
    """A parameter holding a YAML mapping ("" -> {})."""
    if not text:
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{name} must be a YAML mapping, got {text!r}: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a YAML mapping, got {text!r}")
    return value


def main(args: list[str] | None = None) -> None:
    # Skip the seconds of interpreter teardown of torch (pulled in by lerobot).
    run_node(
        LeRobotArmNode,
        num_threads=4,
        on_shutdown=LeRobotArmNode.shutdown_arm,
        exit_process=True,
        args=args,
    )


if __name__ == "__main__":
    main()
