"""policy_node: any LeRobot policy checkpoint behind the ExecuteTask action.

The generic policy node: ``policy_path`` names a local LeRobot ``pretrained_model/``
folder (any policy type; ``visuomotor_policy.LeRobotChunkPolicy``), the parameters of
``visuomotor_policy.PolicyIOConfig`` map ``image_raw`` and ``joint_states`` onto the
policy's features (``image_key``, ``state_key``, ``image_size_px``, ``joint_names``) and
its actions into chunks (``n_action_steps``, ``fps_hz``: the policy's rate). A goal is the
goal runner's policy mode (``executor_core.goal_runner.GoalRunner.for_policy``), the same
loop ``executor_node`` and the simulator evaluations run: observe -> the policy's next
chunk -> feasibility and retiming -> one FollowJointTrajectory goal (or JointTrajectory
message, ``output_mode``) to ``controller_name`` (the safety node's proxy) -> the
``success_service`` verifier after every chunk, until it says yes, ``goal_timeout_s`` (or
the goal's ``timeout_s``), ``max_chunks`` chunks (0: no limit) or a cancel. The goal's
``max_replans`` does not apply (a policy re-decides after every chunk).

Lifecycle (managed) node: configure loads the policy and creates the interfaces (a bad
parameter or checkpoint fails the transition, naming it); activate accepts goals;
deactivate cancels the running goal (the arm is told to hold) and rejects new ones.
``autostart: true`` configures and activates at start (bringup without a lifecycle
manager; a failure then ends the process with status 2).

``rectify: true`` with ``camera_info_path`` (a calibration/ camera_info YAML) undistorts every
frame the policy sees, as in executor_node; a frame of another size aborts the goal.

Threads, as in executor_node: the spin executor only takes messages and goals; one worker
thread runs each accepted goal (inference and motion), one goal at a time
(``executor_bringup.goal_server``). Every goal is
recorded into one MCAP file in ``record_dir`` (``executor_bringup.goal_recording``), and
the camera frames of its motion into ``video_dir/<goal>_executed.mp4`` (at
``executed_video_fps``; 0: none), the result's ``executed_video_path``, as executor_node
writes its executed videos (a policy imagines nothing: ``imagined_video_path`` stays empty).
"""

from __future__ import annotations

from pathlib import Path

import torch
from executor_interfaces.action import ExecuteTask
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image

from calibration.rectify import rectifier_from_parameters
from executor_bringup.arm_wiring import arm_config, connect_arm, receive_image
from executor_bringup.goal_media import GoalMedia
from executor_bringup.goal_recording import GoalRecording
from executor_bringup.goal_server import GoalServer, Job
from executor_bringup.models import resolve_model_dir
from executor_bringup.node_main import autostart_or_fail, run_node
from executor_bringup.ros_arm import SensorCache, model_input_for
from executor_core.goal_runner import (
    GoalAborted,
    GoalObserver,
    GoalResult,
    GoalRunner,
    GoalRunnerConfig,
    Guard,
)
from executor_core.retiming import check_retime_profile
from executor_core.robot_description import RobotDescription, default_robot_path
from visuomotor_policy.configuration_policy import PolicyIOConfig
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy

RUNNER_DEFAULTS = GoalRunnerConfig()
IO_DEFAULTS = PolicyIOConfig()
PARAMETERS = {  # name -> default
    "robot_description_path": "",
    "policy_path": "",  # a LeRobot pretrained_model/ folder (relative: cwd, else the repo)
    "device": "cpu",
    "image_key": IO_DEFAULTS.image_key,
    "state_key": IO_DEFAULTS.state_key,
    "image_size_px": IO_DEFAULTS.image_size_px,
    "joint_names": list(IO_DEFAULTS.joint_names),
    "n_action_steps": IO_DEFAULTS.n_action_steps,
    "fps_hz": IO_DEFAULTS.fps_hz,
    "temporal_ensemble_coeff": IO_DEFAULTS.temporal_ensemble_coeff,
    "output_mode": "action",
    "controller_name": "safety",
    "goal_timeout_s": RUNNER_DEFAULTS.timeout_s,
    "max_chunks": RUNNER_DEFAULTS.max_chunks,
    "max_image_age_s": 1.0,
    "max_clock_skew_s": 0.1,
    "max_prompt_chars": 1000,
    "settle_timeout_s": 2.0,
    "success_service": "",
    "limit_tolerance_rad": RUNNER_DEFAULTS.limit_tolerance_rad,
    "retime_profile": RUNNER_DEFAULTS.retime_profile,
    "record_dir": "/tmp/executor_recordings",
    "video_dir": "/tmp/executor_videos",
    "executed_video_fps": 10.0,
    "camera_info_path": "",
    "rectify": False,
    "autostart": False,
}


class PolicyFeedback(GoalObserver):
    """One goal's ExecuteTask feedback (the goal runner's observer), also recorded, and its
    executed video."""

    def __init__(
        self,
        goal_handle: object,
        result: ExecuteTask.Result,
        recording: GoalRecording,
        media: GoalMedia,
        clock: object,
    ) -> None:
        self.goal_handle, self.result, self.recording = goal_handle, result, recording
        self.media, self.clock = media, clock
        self.start_ns = clock.now().nanoseconds
        self.stem = bytes(goal_handle.goal_id.uuid).hex()[:12]

    def segment_started(self, segment: int) -> None:
        self.media.start_recording()

    def segment_ended(self, segment: int) -> None:
        path = Path(self.media.video_dir) / f"{self.stem}_executed.mp4"
        self.result.executed_video_path = self.media.save_executed(path)

    def phase(self, phase: str, progress: float) -> None:
        elapsed_s = 1e-9 * (self.clock.now().nanoseconds - self.start_ns)
        feedback = ExecuteTask.Feedback(phase=phase, progress=float(progress), elapsed_s=elapsed_s)
        self.goal_handle.publish_feedback(feedback)
        self.recording.feedback(feedback)


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("policy_node", **kwargs)
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default)
        self._cb = ReentrantCallbackGroup()
        self._accepting = False
        self.goals: GoalServer | None = None
        if self.p("autostart"):
            autostart_or_fail(self)

    def p(self, name: str) -> object:
        return self.get_parameter(name).value

    # -- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (ValueError, FileNotFoundError) as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._accepting = True
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._accepting = False  # the running goal's guard sees it: canceled, the arm holds
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.shutdown_worker()
        self.goals.destroy()
        self.goals = None
        self.connected.destroy(self)
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        if (chars := self.p("max_prompt_chars")) < 1:
            raise ValueError(f"max_prompt_chars must be >= 1, got {chars!r}")
        if self.p("output_mode") not in ("topic", "action"):
            raise ValueError(
                f"output_mode must be 'topic' or 'action', got {self.p('output_mode')!r}"
            )
        self.robot = RobotDescription.from_yaml(
            self.p("robot_description_path") or default_robot_path()
        )
        self.rectifier = rectifier_from_parameters(self.p("camera_info_path"), self.p("rectify"))
        self.policy = self._load_policy()
        self.runner = GoalRunner.for_policy(self.policy, self.robot, self._runner_config())
        self.sensors = SensorCache(self.robot.joint_names)
        self.recording = GoalRecording(self, self.policy.io.fps_hz, self._cb)
        self.media = GoalMedia(
            Path(str(self.p("video_dir"))),
            self.policy.io.fps_hz,  # unused: a policy imagines no video
            float(self.p("executed_video_fps")),
            self.get_logger(),
        )
        self.connected = connect_arm(
            self,
            self.sensors,
            self._cb,
            self._on_image,
            str(self.p("output_mode")),
            model_input_for(self.rectifier),
        )
        self.arm = self.connected.arm
        self.arm.recording = self.recording
        self.goals = GoalServer(
            self,
            self._run_goal,
            self.recording,
            self._cb,
            max_prompt_chars=lambda: int(self.p("max_prompt_chars")),
            accepting=lambda: self._accepting,
        )
        verifier = self.arm.config.verifier_name
        self.get_logger().info(
            f"configured: policy {self.p('policy_path')!r} "
            f"({type(self.policy.policy).__name__}), {self.policy.n_action_steps} actions "
            f"per chunk at {self.policy.io.fps_hz:g} Hz, output {self.p('output_mode')!r} via "
            f"{self.p('controller_name')!r}, "
            + (f"task verifier {verifier!r}" if verifier else "no task verifier")
        )

    def _load_policy(self) -> LeRobotChunkPolicy:
        path = str(self.p("policy_path"))
        if not path:
            raise ValueError(
                "policy_path is empty: set it to a LeRobot policy checkpoint folder "
                "(the trainer's checkpoints/<step>/pretrained_model)"
            )
        io = PolicyIOConfig(
            image_key=str(self.p("image_key")),
            state_key=str(self.p("state_key")),
            image_size_px=int(self.p("image_size_px")),
            joint_names=tuple(self.p("joint_names")),
            n_action_steps=int(self.p("n_action_steps")),
            fps_hz=float(self.p("fps_hz")),
            temporal_ensemble_coeff=float(self.p("temporal_ensemble_coeff")),
        )
        policy = LeRobotChunkPolicy.from_pretrained(
            resolve_model_dir(path), io, str(self.p("device"))
        )
        if missing := sorted(set(self.robot.joint_names) ^ set(io.joint_names)):
            raise ValueError(
                f"joint_names {list(io.joint_names)} are not the robot's "
                f"{list(self.robot.joint_names)} (differ in {missing})"
            )
        return policy

    def _runner_config(self) -> GoalRunnerConfig:
        return GoalRunnerConfig(
            max_chunks=int(self.p("max_chunks")),
            limit_tolerance_rad=float(self.p("limit_tolerance_rad")),
            retime_profile=check_retime_profile(str(self.p("retime_profile"))),
            timeout_s=float(self.p("goal_timeout_s")),
        )

    # -- subscriptions
    def _on_image(self, msg: Image) -> None:
        receive_image(self, msg, self.sensors, self.media, self.recording)

    def shutdown_worker(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after its current goal (daemon: abandoned after ``timeout_s``)."""
        if self.goals is None or self.goals.stopped:
            return
        self._accepting = False
        self.goals.shutdown(timeout_s)
        self.media.shutdown()
        self.recording.shutdown()

    # -- one goal
    def _run_goal(self, job: Job) -> GoalResult:
        gh, goal = job.goal_handle, job.goal_handle.request
        # Parameters are read per goal: `ros2 param set` takes effect on the next goal.
        self.runner = GoalRunner.for_policy(self.policy, self.robot, self._runner_config())
        self.arm.config = arm_config(self, self.arm.config.output_mode)
        timeout_s = goal.timeout_s if goal.timeout_s > 0 else self.runner.config.timeout_s
        guard = Guard(
            timeout_s, cancel_requested=lambda: gh.is_cancel_requested or not self._accepting
        )
        self.recording.begin(gh, str(self.p("record_dir")))
        try:
            self.arm.check_verifier()
        except GoalAborted as exc:
            return GoalResult("aborted", str(exc), [], [])
        feedback = PolicyFeedback(gh, job.result, self.recording, self.media, self.get_clock())
        return self.runner.run(goal.task_prompt, self.arm, guard, feedback)


def main(args: list[str] | None = None) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads() // 2))
    # A goal in flight cannot finish once the context is down: do not wait long for it.
    shutdown = lambda node: node.shutdown_worker(timeout_s=1.0)  # noqa: E731
    run_node(PolicyNode, num_threads=2, on_shutdown=shutdown, exit_process=True, args=args)


if __name__ == "__main__":
    main()
