"""executor_node: the ExecuteTask action server (image + task -> imagined video -> motion).

Threads: the ROS executor (MultiThreadedExecutor, one ReentrantCallbackGroup) only takes
messages and goals. Each accepted goal is put on a queue; one worker thread runs the
models (``executor_core.imagine_to_act``), saves the video, sends the trajectory and waits
for the arm, while the goal's execute callback just waits for the worker's verdict.

Policy:
- One goal at a time: a goal that arrives while another is running is rejected.
- The latest ``image_raw`` is used only if younger than ``max_image_age_s`` (its header
  stamp against this node's clock); otherwise the goal aborts naming the age. Before the
  first image a goal waits up to ``max_image_age_s`` for it. Malformed
  images are rejected at the subscription (logged, counted) and never reach a model.
- ``output_mode`` ``action`` sends FollowJointTrajectory goals to
  ``<controller_name>/follow_joint_trajectory`` (the safety node's proxy by default);
  ``topic`` publishes on ``<controller_name>/joint_trajectory``. Cancel cancels that goal
  (action) or publishes an empty trajectory, the controller's "hold" (topic).
- After a segment, ``verifying`` compares ``joint_states`` with the last point. Without a
  verifier (``success_service`` empty, a real robot today) reaching it is the success; if
  the arm did not get there and replans are left (``max_replans``), it re-imagines from
  the new image. With ``success_service`` (a std_srvs/Trigger that judges the task, e.g.
  sim_arm_node's ``task_success``) its answer is the success: a "no" re-imagines from the
  new image while replans are left, then fails saying the task predicate was not met. A
  verifier that is configured but not there fails the goal before the arm moves, naming
  the service. ``goal_timeout_s`` bounds the whole goal.
- From sending a segment until its verification is done, the camera frames that arrive
  (at most ``executed_video_fps``) are recorded and written next to the imagined video
  (``<goal>_<segment>_executed.mp4``), so the result names what was imagined and what the
  camera saw happen.
- ``rectify: true`` with ``camera_info_path`` (the camera_info YAML of
  ``executor-calibrate-intrinsics``) undistorts every frame with
  ``calibration.rectify.Rectifier`` before the models see it, in the worker (one remap per
  goal, not per received frame); a frame of another size than calibrated aborts the goal.
- ``idm_mode`` says how the imagined video becomes motion. ``open_loop``: the IDM chains
  all chunks from the imagined frames up front (``imagine_to_act``) and the segment is one
  trajectory, sent once. ``closed_loop``: after imagining, the worker tracks the imagined
  frames one by one: latest camera frame (the same preprocessing, rectification included)
  + latest ``joint_states`` + the next imagined frame -> one IDM chunk (``frame_stride``
  points, 0.4 s) -> sent the same way as a whole trajectory -> wait for it -> next frame.
  The result's ``trajectory`` is then the segment's chunks back to back (their own clocks,
  without the gaps between them); verification follows the last chunk, as in open loop.
- ``replan_from_home`` (default true): before re-imagining, the arm moves back to the
  robot description's home pose (straight in joint space, fastest joint at
  ``home_speed_rad_s``, gripper held; ``executor_core.imagine_to_act.return_home``), sent
  like a segment, and the next video is imagined from a camera frame taken after the move.
  The video models learn from clips that start at home; an image with the arm elsewhere
  is out of their distribution.
- Empty model paths load tiny random test-double models (logged as a warning): that is
  for tests and benchmarks of the plumbing, not for controlling an arm.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
import torch
from control_msgs.action import FollowJointTrajectory
from executor_interfaces.action import ExecuteTask
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from calibration.camera_info_io import load_camera_info
from calibration.rectify import Rectifier
from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.frame_recorder import FrameRecorder
from executor_bringup.image_conversion import ImageConversionError, image_to_rgb8
from executor_bringup.process_exit import exit_process_now
from executor_bringup.qos import command_qos, sensor_qos
from executor_bringup.trajectory_conversion import trajectory_to_msg
from executor_core.chunks import concatenate_trajectories, return_home
from executor_core.policy import (
    InverseDynamics,
    VideoModel,
    check_idm_mode,
    chunk_towards,
    goal_frames,
    imagine_to_act,
    imagine_video,
)
from executor_core.retiming import retime_to_limits, within_position_limits
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.test_doubles import TinyRandomInverseDynamics, TinyRandomVideoModel
from executor_core.types import JointTrajectory
from executor_core.video_io import save_video_mp4

logger = logging.getLogger(__name__)

PHASE = ExecuteTask.Feedback
# How long the task verifier may take to be discovered and to answer one request. A sim
# predicate answers in milliseconds; the bound only turns a dead verifier into a message.
VERIFIER_WAIT_S = 5.0
HOME_POINT_RATE_HZ = 10.0  # point spacing of the move home; the controller interpolates


def wait_future(future: Future, timeout_s: float) -> bool:
    """Block this (non-spinning) thread until the future is done; False on timeout."""
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    return done.wait(timeout_s) or future.done()


@dataclass
class Job:
    goal_handle: object
    done: threading.Event = field(default_factory=threading.Event)
    result: ExecuteTask.Result = field(default_factory=ExecuteTask.Result)


class GoalAborted(Exception):  # noqa: N818  (control flow, not an error of this module)
    """Ends a goal early with a message for the result."""


class GoalCanceled(Exception):  # noqa: N818
    pass


REPO_ROOT = Path(__file__).resolve().parents[1]


def _resolve_model_dir(path: str) -> str:
    """A relative model path is taken from the working directory, else from the repository
    root, so that the bringup YAML can name the committed checkpoints/ wherever it runs."""
    if Path(path).is_absolute() or Path(path).exists():
        return path
    in_repo = REPO_ROOT / path
    return str(in_repo) if in_repo.exists() else path


def load_models(
    executor_dir: str, idm_dir: str, robot: RobotDescription, seed: int
) -> tuple[VideoModel, InverseDynamics, bool]:
    """(video model, IDM, is_test_double). Empty paths give the tiny random test doubles."""
    if not executor_dir and not idm_dir:
        torch.manual_seed(seed)
        return (
            TinyRandomVideoModel(size_px=32, num_frames=5),
            TinyRandomInverseDynamics(robot.joint_names, robot.home_rad),
            True,
        )
    if not executor_dir or not idm_dir:
        raise ValueError(
            f"give both model paths or neither: executor_pipeline_dir="
            f"{executor_dir!r}, idm_dir={idm_dir!r}"
        )
    executor_dir, idm_dir = _resolve_model_dir(executor_dir), _resolve_model_dir(idm_dir)
    # Imported here: the real pipelines pull in diffusers/transformers, tests do not need it.
    from inverse_dynamics.processing_idm import InverseDynamicsPolicy
    from video_models.pipeline_executor import ExecutorVideoPipeline

    idm = InverseDynamicsPolicy.from_pretrained(Path(idm_dir))
    if tuple(idm.config.joint_names) != robot.joint_names:
        raise ValueError(
            f"IDM joints {idm.config.joint_names!r} differ from the robot's {robot.joint_names!r}"
        )
    return PipelineVideoModel(ExecutorVideoPipeline.from_pretrained(Path(executor_dir))), idm, False


class PipelineVideoModel:
    """Adapts ExecutorVideoPipeline (batched output) to the VideoModel protocol."""

    def __init__(self, pipeline: object) -> None:
        self.pipeline = pipeline

    def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        return self.pipeline(image_rgb, prompt, seed=seed).frames[0]  # (T, H, W, 3) uint8


class ExecutorNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("executor_node", **kwargs)
        p = self.declare_parameter
        p("robot_description_path", "")
        p("executor_pipeline_dir", "")
        p("idm_dir", "")
        p("output_mode", "action")
        p("controller_name", "safety")
        p("max_replans", 0)
        p("goal_timeout_s", 120.0)
        p("max_image_age_s", 1.0)
        p("seed", 0)
        p("video_dir", "/tmp/executor_videos")
        p("video_fps", 2.5)
        p("goal_tolerance_rad", 0.05)
        p("settle_timeout_s", 2.0)
        p("camera_info_path", "")
        p("rectify", False)
        p("success_service", "")
        p("executed_video_fps", 10.0)
        p("limit_tolerance_rad", 0.05)
        p("idm_mode", "open_loop")
        p("replan_from_home", True)
        p("home_speed_rad_s", 1.0)
        g = self.get_parameter
        self.output_mode = g("output_mode").value
        if self.output_mode not in ("topic", "action"):
            raise ValueError(f"output_mode must be 'topic' or 'action', got {self.output_mode!r}")
        self.idm_mode = check_idm_mode(g("idm_mode").value)
        self.limit_tolerance_rad = float(g("limit_tolerance_rad").value)
        if not 0.0 <= self.limit_tolerance_rad <= 0.2:
            raise ValueError(
                f"limit_tolerance_rad must be in [0, 0.2], got {self.limit_tolerance_rad!r}"
            )
        self.robot = RobotDescription.from_yaml(
            g("robot_description_path").value or default_robot_path()
        )
        self.video_model, self.idm, test_double = load_models(
            g("executor_pipeline_dir").value, g("idm_dir").value, self.robot, g("seed").value
        )
        if test_double:
            self.get_logger().warning(
                "NO MODEL PATHS GIVEN: using TINY RANDOM TEST-DOUBLE models (random weights); "
                "motion is meaningless. Set executor_pipeline_dir and idm_dir for real use."
            )
        self.using_test_models = test_double
        if self.idm_mode == "closed_loop" and not hasattr(self.idm, "predict_chunk"):
            raise ValueError(
                f"idm_mode 'closed_loop' needs an IDM with predict_chunk; "
                f"{type(self.idm).__name__} has none"
            )
        self.rectifier = self._make_rectifier(g("camera_info_path").value, g("rectify").value)

        self._cb = ReentrantCallbackGroup()
        self._lock = threading.Lock()
        self._busy = False
        self._image: np.ndarray | None = None  # (H, W, 3) uint8 RGB, view on the message
        self._image_stamp_s = 0.0
        self._image_count = 0  # images accepted so far: "a frame newer than ..." in closed loop
        self._q: np.ndarray | None = None  # (J,) robot order
        self.images_rejected = 0
        self.last_image_error = ""
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._video_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video")
        record_fps = float(g("executed_video_fps").value)
        if record_fps < 0:
            raise ValueError(f"executed_video_fps must be >= 0 (0: off), got {record_fps!r}")
        self._recorder = FrameRecorder(record_fps) if record_fps > 0 else None

        ctrl = g("controller_name").value
        self._fjt_name = f"{ctrl}/follow_joint_trajectory"
        self.create_subscription(
            Image, "image_raw", self._on_image, sensor_qos(5), callback_group=self._cb
        )
        self.create_subscription(
            JointState, "joint_states", self._on_joint_state, sensor_qos(), callback_group=self._cb
        )
        self._traj_pub = self.create_publisher(
            JointTrajectoryMsg, f"{ctrl}/joint_trajectory", command_qos()
        )
        self._fjt = ActionClient(
            self, FollowJointTrajectory, f"{ctrl}/follow_joint_trajectory", callback_group=self._cb
        )
        verifier = g("success_service").value
        self._verifier = (
            self.create_client(Trigger, verifier, callback_group=self._cb) if verifier else None
        )
        self._verifier_name = self.resolve_service_name(verifier) if verifier else ""
        self._server = ActionServer(
            self,
            ExecuteTask,
            "execute_task",
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=self._cb,
        )
        self._worker = threading.Thread(target=self._work, name="executor_worker", daemon=True)
        self._worker.start()
        judge = f"task verifier {self._verifier_name!r}" if verifier else "no task verifier"
        self.get_logger().info(
            f"ready: output {self.output_mode!r} via {ctrl!r}, IDM {self.idm_mode}, {judge}"
        )

    def _make_rectifier(self, camera_info_path: str, rectify: bool) -> Rectifier | None:
        if not rectify:
            if camera_info_path:
                self.get_logger().warning(
                    f"camera_info_path {camera_info_path!r} is set but rectify is false: "
                    "frames reach the models unrectified"
                )
            return None
        if not camera_info_path:
            raise ValueError("rectify is true but camera_info_path is empty")
        rectifier = Rectifier(load_camera_info(camera_info_path))
        cam = rectifier.camera
        self.get_logger().info(
            f"rectifying {cam.image_width_px}x{cam.image_height_px} frames "
            f"({cam.distortion_model}) with {camera_info_path}"
        )
        return rectifier

    def model_input(self, image_rgb: np.ndarray) -> np.ndarray:
        """The frame the models see: rectified when configured. (H, W, 3) uint8."""
        if self.rectifier is None:
            return image_rgb
        try:
            return self.rectifier(image_rgb)
        except ValueError as exc:  # frame size differs from the calibration
            raise GoalAborted(f"cannot rectify image_raw: {exc}") from None

    # -- subscriptions
    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_to_rgb8(msg)
        except ImageConversionError as exc:
            self.images_rejected += 1
            self.last_image_error = str(exc)
            self.get_logger().error(f"rejected image_raw message: {exc}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self._image = rgb
            self._image_stamp_s = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            self._image_count += 1
        if self._recorder is not None:
            self._recorder.add(rgb, time.monotonic())

    def _on_joint_state(self, msg: JointState) -> None:
        names = list(msg.name)
        try:
            q = np.array([msg.position[names.index(n)] for n in self.robot.joint_names])
        except (ValueError, IndexError):
            return
        with self._lock:
            self._q = q

    def joint_positions_rad(self) -> np.ndarray | None:
        with self._lock:
            return None if self._q is None else self._q.copy()

    # -- action server
    def _on_goal(self, goal: ExecuteTask.Goal) -> GoalResponse:
        if not goal.task_prompt.strip():
            self.get_logger().error(f"rejected goal: empty task_prompt {goal.task_prompt!r}")
            return GoalResponse.REJECT
        with self._lock:
            if self._busy:
                self.get_logger().warning(
                    f"rejected goal {goal.task_prompt!r}: another goal is running"
                )
                return GoalResponse.REJECT
            self._busy = True
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle: object) -> ExecuteTask.Result:
        job = Job(goal_handle)
        self._jobs.put(job)
        job.done.wait()
        return job.result

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._run_goal(job)
            except Exception as exc:  # a bug must not kill the worker or hang the goal
                self.get_logger().error(f"goal failed with an exception: {exc!r}")
                job.result.success, job.result.message = False, f"internal error: {exc!r}"
                job.goal_handle.abort()
            finally:
                with self._lock:
                    self._busy = False
                job.done.set()

    def shutdown_worker(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after its current goal (daemon: abandoned after ``timeout_s``)."""
        self._jobs.put(None)
        self._worker.join(timeout=timeout_s)
        if self._worker.is_alive():
            self.get_logger().warning(f"worker still busy after {timeout_s} s; abandoning it")
        self._video_writer.shutdown(wait=True)  # a video being written is finished, not lost

    # -- one goal
    def _run_goal(self, job: Job) -> None:
        gh, result = job.goal_handle, job.result
        goal = gh.request
        g = self.get_parameter
        timeout_s = goal.timeout_s if goal.timeout_s > 0 else g("goal_timeout_s").value
        max_replans = goal.max_replans if goal.max_replans >= 0 else g("max_replans").value
        start = time.monotonic()
        deadline = start + timeout_s
        feedback = ExecuteTask.Feedback()
        segments = max_replans + 1

        def publish(phase: str, within: float) -> None:
            feedback.phase = phase
            feedback.progress = float(min(1.0, (result.replans_used + within) / segments))
            feedback.elapsed_s = time.monotonic() - start
            gh.publish_feedback(feedback)

        try:
            # Fail before the arm moves: a goal that cannot be judged must not run.
            if self._verifier is not None and not self._verifier.wait_for_service(
                timeout_sec=VERIFIER_WAIT_S
            ):
                raise GoalAborted(self._verifier_missing())
            while True:
                self._check_alive(gh, deadline)
                if result.replans_used > 0 and g("replan_from_home").value:
                    publish(PHASE.PHASE_EXECUTING, 0.0)
                    self._go_home(gh, deadline)
                image = self.model_input(self._fresh_image())
                q = self.joint_positions_rad()
                seed = int(g("seed").value) + result.replans_used
                video, planned = self._imagine(
                    image,
                    goal.task_prompt,
                    q,
                    seed,
                    lambda ph: publish(ph, 0.1 if ph == PHASE.PHASE_IMAGINING else 0.4),
                )
                self._check_alive(gh, deadline)
                video_path = Path(g("video_dir").value) / (
                    f"{bytes(gh.goal_id.uuid).hex()[:12]}_{result.replans_used}.mp4"
                )
                # The mp4 is written while the arm moves: motion does not wait for disk.
                saving = self._video_writer.submit(
                    save_video_mp4, video, video_path, g("video_fps").value
                )
                publish(PHASE.PHASE_EXECUTING, 0.5)
                executed_path = video_path.with_name(f"{video_path.stem}_executed.mp4")
                if self._recorder is not None:
                    self._recorder.start()
                verdict: tuple[bool, str] | None = None
                try:
                    if planned is not None:
                        sent = planned
                        self._send(trajectory_to_msg(sent), gh, deadline)
                    else:
                        sent = self._track(
                            video,
                            gh,
                            deadline,
                            lambda done: publish(PHASE.PHASE_EXECUTING, 0.5 + 0.45 * done),
                        )
                    result.trajectory = trajectory_to_msg(sent)
                    publish(PHASE.PHASE_VERIFYING, 0.95)
                    reached, err = self._verify(sent.positions_rad[-1], deadline)
                    if self._verifier is not None:
                        verdict = self._ask_verifier(gh, deadline)
                finally:
                    result.imagined_video_path = str(saving.result())
                    result.executed_video_path = self._save_executed(executed_path)
                points = sent.positions_rad.shape[0]
                executed = f"{points} points executed, final joint error {err:.4f} rad"
                missed = (
                    f"arm did not reach the last point: max joint error "
                    f"{err:.4f} rad > goal_tolerance_rad {g('goal_tolerance_rad').value}"
                )
                if verdict is None:  # no verifier: reaching the last point is the success
                    if reached:
                        result.success, result.message = True, f"done: {executed}"
                        gh.succeed()
                        return
                    if result.replans_used >= max_replans:
                        raise GoalAborted(f"{missed} after {result.replans_used} replan(s)")
                else:
                    task_ok, verifier_says = verdict
                    if task_ok:
                        result.success = True
                        result.message = f"task done ({verifier_says}): {executed}"
                        gh.succeed()
                        return
                    if result.replans_used >= max_replans:
                        also = "" if reached else f"; {missed}"
                        raise GoalAborted(
                            f"task predicate not met after {result.replans_used} replan(s): "
                            f"{self._verifier_name} says {verifier_says!r}{also}"
                        )
                result.replans_used += 1
        except GoalCanceled:
            result.success, result.message = False, "canceled; the arm was told to hold"
            gh.canceled()
        except (GoalAborted, ValueError) as exc:
            result.success, result.message = False, str(exc)
            self.get_logger().error(f"goal aborted: {exc}")
            gh.abort()

    def _imagine(
        self,
        image: np.ndarray,  # (H, W, 3) uint8, model input
        prompt: str,
        q: np.ndarray | None,  # (J,) measured
        seed: int,
        on_phase: Callable[[str], None],
    ) -> tuple[np.ndarray, JointTrajectory | None]:
        """(imagined video, the whole trajectory in open loop; None in closed loop, where
        ``_track`` asks the IDM chunk by chunk while the arm moves)."""
        if self.idm_mode == "closed_loop":
            return imagine_video(image, prompt, self.video_model, seed, on_phase), None
        plan = imagine_to_act(
            image, prompt, self.video_model, self.idm, self.robot.joint_names, q, seed, on_phase
        )
        return plan.video, self._feasible(plan.trajectory, q)

    def _feasible(self, trajectory: JointTrajectory, q: np.ndarray | None) -> JointTrajectory:
        """Imagined motion has no notion of the arm's limits: near-miss targets go onto the
        range limit (logged), the path keeps its shape and the clock slows down. The
        safety node still checks, and rejects rather than clips."""
        try:
            trajectory = within_position_limits(trajectory, self.robot, self.limit_tolerance_rad)
        except ValueError as exc:
            raise GoalAborted(f"the IDM's trajectory is outside the joint range: {exc}") from None
        return retime_to_limits(trajectory, self.robot, q)

    def _track(
        self,
        video: np.ndarray,  # (T, S, S, 3) uint8, the imagined segment
        gh: object,
        deadline: float,
        progress: Callable[[float], None],  # fraction of the goal frames done, 0..1
    ) -> JointTrajectory:
        """Closed loop over one imagined segment: one IDM chunk per goal frame, each from
        the latest camera frame and joint state, sent and waited for before the next.
        Returns what was sent, back to back."""
        goals = goal_frames(video)
        sent: list[JointTrajectory] = []
        images_seen = 0
        for i, goal in enumerate(goals):
            self._check_alive(gh, deadline)
            if i > 0:
                # A frame taken after the last chunk ended, not while the arm still moved
                # (costs up to one camera period).
                self._wait_image_after(images_seen, deadline, gh)
            image = self.model_input(self._fresh_image())
            q = self.joint_positions_rad()
            chunk = chunk_towards(self.idm, image, goal, self.robot.joint_names, q)
            chunk = self._feasible(chunk, q)
            self._send(trajectory_to_msg(chunk), gh, deadline, tolerate_goal_miss=True)
            with self._lock:
                images_seen = self._image_count
            sent.append(chunk)
            progress((i + 1) / len(goals))
        return concatenate_trajectories(sent)

    def _wait_image_after(self, seen: int, deadline: float, gh: object) -> None:
        """Wait for an image beyond the first ``seen`` ones, at most ``max_image_age_s``;
        then the latest one is used anyway (``_fresh_image`` still refuses a stale one)."""
        end = time.monotonic() + self.get_parameter("max_image_age_s").value
        while time.monotonic() < end:
            with self._lock:
                if self._image_count > seen:
                    return
            self._check_alive(gh, deadline)
            time.sleep(0.005)

    def _verifier_missing(self) -> str:
        return (
            f"task verifier service {self._verifier_name!r} (parameter success_service) "
            f"is not available after {VERIFIER_WAIT_S} s"
        )

    def _ask_verifier(self, gh: object, deadline: float) -> tuple[bool, str]:
        """(task succeeded, the verifier's message); blocks this worker thread only."""
        if not self._verifier.wait_for_service(timeout_sec=VERIFIER_WAIT_S):
            raise GoalAborted(self._verifier_missing())
        future = self._verifier.call_async(Trigger.Request())
        answered = threading.Event()
        future.add_done_callback(lambda _f: answered.set())
        end = time.monotonic() + VERIFIER_WAIT_S
        while not answered.wait(0.02):
            try:
                self._check_alive(gh, deadline)
                if time.monotonic() > end:
                    raise GoalAborted(
                        f"task verifier service {self._verifier_name!r} did not answer "
                        f"within {VERIFIER_WAIT_S} s"
                    )
            except (GoalCanceled, GoalAborted):
                self._verifier.remove_pending_request(future)
                raise
        response = future.result()
        return bool(response.success), str(response.message)

    def _save_executed(self, path: Path) -> str:
        """Stop recording and write the executed video; its path, or '' if none."""
        if self._recorder is None:
            return ""
        frames, fps = self._recorder.stop()
        if frames is None:
            self.get_logger().warning(
                "no camera frame arrived while the segment executed: no executed video"
            )
            return ""
        try:
            return str(save_video_mp4(frames, path, fps))
        except (OSError, ValueError) as exc:
            # A by-product: it must not hide how the goal itself ended.
            self.get_logger().error(f"could not write the executed video {path}: {exc}")
            return ""

    def _check_alive(self, gh: object, deadline: float) -> None:
        if gh.is_cancel_requested:
            raise GoalCanceled
        if time.monotonic() > deadline:
            raise GoalAborted("goal_timeout_s exceeded")

    def _fresh_image(self) -> np.ndarray:
        limit = self.get_parameter("max_image_age_s").value
        # A goal right after startup may beat the camera's discovery: give the first frame
        # as long as a frame may be old, then abort naming the reason.
        first_deadline = time.monotonic() + limit
        while True:
            with self._lock:
                image, stamp_s = self._image, self._image_stamp_s
            if image is not None or time.monotonic() > first_deadline:
                break
            time.sleep(0.02)
        if image is None:
            why = f" (last one rejected: {self.last_image_error})" if self.last_image_error else ""
            raise GoalAborted(f"no valid image received on image_raw yet{why}")
        age_s = self.get_clock().now().nanoseconds * 1e-9 - stamp_s
        if age_s > limit:
            raise GoalAborted(f"stale image: age {age_s:.3f} s > max_image_age_s {limit:.3f}")
        return np.ascontiguousarray(image)

    def _hold(self) -> None:
        hold = JointTrajectoryMsg()
        hold.joint_names = list(self.robot.joint_names)
        self._traj_pub.publish(hold)

    def _send(
        self,
        msg: JointTrajectoryMsg,
        gh: object,
        deadline: float,
        tolerate_goal_miss: bool = False,
    ) -> None:
        duration_s = msg.points[-1].time_from_start.sec + 1e-9 * (
            msg.points[-1].time_from_start.nanosec
        )
        if self.output_mode == "topic":
            self._traj_pub.publish(msg)
            end = time.monotonic() + duration_s
            while time.monotonic() < end:
                try:
                    self._check_alive(gh, deadline)
                except (GoalCanceled, GoalAborted):
                    self._hold()
                    raise
                time.sleep(0.02)
            return
        if not self._fjt.wait_for_server(timeout_sec=2.0):
            raise GoalAborted(f"no FollowJointTrajectory server at {self._fjt_name!r} in 2 s")
        goal = FollowJointTrajectory.Goal()
        goal.trajectory = msg
        send = self._fjt.send_goal_async(goal)
        if not wait_future(send, 5.0):
            raise GoalAborted("FollowJointTrajectory goal not answered in 5 s")
        handle = send.result()
        if not handle.accepted:
            raise GoalAborted("FollowJointTrajectory goal rejected")
        get_result = handle.get_result_async()
        finished = threading.Event()
        get_result.add_done_callback(lambda _f: finished.set())
        while not finished.wait(0.02):
            try:
                self._check_alive(gh, deadline)
            except (GoalCanceled, GoalAborted):
                wait_future(handle.cancel_goal_async(), 2.0)
                raise
        res = get_result.result().result
        if tolerate_goal_miss and (
            res.error_code == FollowJointTrajectory.Result.GOAL_TOLERANCE_VIOLATED
        ):
            # A closed-loop chunk that ends a little off its goal is what the next chunk,
            # predicted from the measured state, corrects; only the last one is verified.
            self.get_logger().info(f"chunk ended outside its goal tolerance: {res.error_string}")
            return
        if res.error_code != FollowJointTrajectory.Result.SUCCESSFUL or (
            get_result.result().status != 4  # action_msgs GoalStatus.STATUS_SUCCEEDED
        ):
            raise GoalAborted(
                f"trajectory failed (error_code {res.error_code}): {res.error_string}"
            )

    def _go_home(self, gh: object, deadline: float) -> None:
        """Move to the home pose (gripper held), then wait for a camera frame taken there."""
        q = self.joint_positions_rad()
        if q is None:
            raise GoalAborted("no joint_states to move home from")
        speed = float(self.get_parameter("home_speed_rad_s").value)
        move = return_home(
            self.robot.joint_names, q, self.robot.home_rad, speed, HOME_POINT_RATE_HZ
        )
        if move is None:
            return
        self.get_logger().info(
            f"returning home before re-imagining: {move.positions_rad.shape[0]} points, "
            f"{move.duration_s:.1f} s"
        )
        self._send(trajectory_to_msg(move), gh, deadline, tolerate_goal_miss=True)
        arrived_s = self.get_clock().now().nanoseconds * 1e-9
        limit = float(self.get_parameter("max_image_age_s").value)
        end = min(deadline, time.monotonic() + limit)
        while True:
            with self._lock:
                stamp_s = self._image_stamp_s
            if stamp_s >= arrived_s:
                return
            if time.monotonic() > end:
                raise GoalAborted(
                    f"no camera frame after the move home within max_image_age_s {limit:.3f}"
                )
            self._check_alive(gh, deadline)
            time.sleep(0.02)

    def _verify(self, final_q: np.ndarray, deadline: float) -> tuple[bool, float]:
        tol = self.get_parameter("goal_tolerance_rad").value
        end = min(deadline, time.monotonic() + self.get_parameter("settle_timeout_s").value)
        err = float("inf")
        while True:
            q = self.joint_positions_rad()
            if q is not None:
                err = float(np.max(np.abs(q - final_q)))
                if err <= tol:
                    return True, err
            if time.monotonic() > end:
                return False, err
            time.sleep(0.02)


def main(args: list[str] | None = None) -> None:
    apply_default_transports()  # before rclpy.init: every process must agree
    rclpy.init(args=args if args is not None else sys.argv)
    torch.set_num_threads(max(1, torch.get_num_threads() // 2))
    try:
        node = ExecutorNode()
    except (ValueError, FileNotFoundError) as exc:
        logging.getLogger("executor_node").error("%s", exc)
        rclpy.try_shutdown()
        raise SystemExit(2) from exc
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # A goal in flight cannot finish once the context is down: do not wait long for it.
        node.shutdown_worker(timeout_s=1.0)
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    # Skip the 2-3 s interpreter teardown of torch/diffusers: everything is released.
    exit_process_now(0)


if __name__ == "__main__":
    main()
