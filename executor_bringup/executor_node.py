"""executor_node: the ExecuteTask action server, the ROS adapter of the goal runner.

The goal itself (imagine -> track with the IDM -> feasibility and retiming -> send and
wait -> verify -> replan from home) is ``executor_core.goal_runner.GoalRunner``, the same
runner the closed-loop benchmark drives on the simulator; its docstring and
``GoalRunnerConfig`` define ``idm_mode``, ``max_replans``, ``verify_each_chunk``,
``replan_from_home`` and the rest, and this node's parameters of those names default to
the runner's defaults. This node adds the ROS side (``executor_bringup.ros_arm.RosArm``):
``image_raw`` and ``joint_states`` in, FollowJointTrajectory goals (or JointTrajectory
messages, ``output_mode``) out to ``controller_name`` (the safety node's proxy), the
``success_service`` task verifier (std_srvs/Trigger; empty: none, as on a real robot).

Threads: the rclpy spin executor (``spin_executors.QueueSafeMultiThreadedExecutor``, one
ReentrantCallbackGroup) only takes messages and goals. Each accepted goal goes on a queue;
one worker thread runs it (models, motion, verification), while the goal's execute
callback waits for its result (``executor_bringup.goal_server``, shared with policy_node).

Policy:
- One goal at a time: a goal that arrives while another runs is rejected; so is an empty
  prompt, and one longer than ``max_prompt_chars`` characters (logged with its length;
  nothing is cut). The text encoder's own limit (the video model's ``max_text_tokens``) is
  checked when the goal imagines: a longer prompt aborts the goal naming its token count.
  ``goal_timeout_s`` bounds a goal (wall clock); a goal may ask for less
  (``timeout_s``) and set its own ``max_replans`` (-1: the parameter).
- A verifier that is configured but not there fails the goal before the arm moves.
- Malformed images are rejected at the subscription (logged, counted), never reach a model.
  A goal aborts on an image older than ``max_image_age_s`` or stamped more than
  ``max_clock_skew_s`` ahead of the node's clock, naming the age or the skew.
- ``rectify: true`` with ``camera_info_path`` undistorts every frame the models see
  (``calibration.rectify.Rectifier``), in the worker; a frame of another size aborts.
- ``num_candidates`` > 1 imagines that many videos per segment and tracks the one
  ``candidate_judge`` rates best (``self_distillation.judges.critic.make_critic``); only that one
  is written to ``video_dir`` and recorded. Each costs one more imagining per segment.
  ``candidate_judge: learned`` reads the execution critic at ``critic_path``
  (``execution_critic``); a missing folder fails the node at startup, naming it.
- ``grasp_gate_max_height_m`` > 0 holds every gripper closing commanded higher than that
  above the arm base's plane (``executor_core.grasp_gate``, over the SO-101 kinematics of
  ``calibration.kinematics``); a robot description the MJCF does not match fails at startup.
- Each imagined video is written to ``video_dir`` (``<goal>_<segment>.mp4``) while the arm
  moves; the camera frames received while a segment executes and is verified (at most
  ``executed_video_fps``) go next to it (``<goal>_<segment>_executed.mp4``).
- The result's ``trajectory`` is the last segment's chunks back to back, also after a
  cancel or an abort.
- Every goal is recorded into one MCAP file in ``record_dir`` ("" : off), its path in the
  result's ``recording_path`` (``executor_bringup.goal_recording``; topics in
  ``executor_bringup.recording_layout``); the file is complete before the result is sent.
- Empty model paths load tiny random test-double models (logged as a warning): that is
  for tests and benchmarks of the plumbing, not for controlling an arm.
- Models: ``executor_pipeline_dir`` is any preset's local folder (a saved pipeline or a
  real-scale LoRA export, whose base weights are read from ``executor_base_dir`` or the
  path the export names), on ``model_device`` ("cpu", "cuda", "auto"). The models load and,
  with ``warmup`` (default), imagine one video before the action server exists, so no goal
  is accepted before the node is warm (the start-up log gives the warm-up seconds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image

from calibration.kinematics import kinematic_grasp_gate
from calibration.rectify import rectifier_from_parameters
from executor_bringup.arm_wiring import arm_config, connect_arm, receive_image
from executor_bringup.goal_media import GoalFeedback, GoalMedia
from executor_bringup.goal_recording import GoalRecording
from executor_bringup.goal_server import GoalServer, Job
from executor_bringup.models import load_models
from executor_bringup.node_main import run_node
from executor_bringup.ros_arm import SensorCache, model_input_for
from executor_core.goal_runner import (
    GoalAborted,
    GoalResult,
    GoalRunner,
    GoalRunnerConfig,
    Guard,
)
from executor_core.policy import check_idm_mode
from executor_core.retiming import check_retime_profile
from executor_core.robot_description import RobotDescription, default_robot_path
from self_distillation.judges.critic import make_critic

RUNNER_DEFAULTS = GoalRunnerConfig()
PARAMETERS = {  # name -> default; the runner's settings default to the runner's defaults
    "robot_description_path": "",
    "executor_pipeline_dir": "",
    "executor_base_dir": "",
    "model_device": "cpu",
    "warmup": True,
    "idm_dir": "",
    "output_mode": "action",
    "controller_name": "safety",
    "max_replans": RUNNER_DEFAULTS.max_replans,
    "goal_timeout_s": RUNNER_DEFAULTS.timeout_s,
    "max_image_age_s": 1.0,
    "max_clock_skew_s": 0.1,
    "max_prompt_chars": 1000,
    "seed": RUNNER_DEFAULTS.seed,
    "video_dir": "/tmp/executor_videos",
    "video_fps": 2.5,
    "record_dir": "/tmp/executor_recordings",
    "goal_tolerance_rad": RUNNER_DEFAULTS.goal_tolerance_rad,
    "settle_timeout_s": 2.0,
    "camera_info_path": "",
    "rectify": False,
    "success_service": "",
    "executed_video_fps": 10.0,
    "limit_tolerance_rad": RUNNER_DEFAULTS.limit_tolerance_rad,
    "idm_mode": RUNNER_DEFAULTS.idm_mode,
    "verify_each_chunk": RUNNER_DEFAULTS.verify_each_chunk,
    "replan_from_home": RUNNER_DEFAULTS.replan_from_home,
    "home_speed_rad_s": RUNNER_DEFAULTS.home_speed_rad_s,
    "retime_profile": RUNNER_DEFAULTS.retime_profile,
    "num_candidates": RUNNER_DEFAULTS.num_candidates,
    "candidate_judge": "execution_aware",
    "critic_path": "",  # the execution critic's folder, for candidate_judge "learned"
    # executor_core.grasp_gate: the jaws close only with the gripper frame at most this
    # high above the arm base's plane (SO-101 kinematics); 0: no gate
    "grasp_gate_max_height_m": 0.0,
}


class ExecutorNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("executor_node", **kwargs)
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default)
        if (chars := self.p("max_prompt_chars")) < 1:
            raise ValueError(f"max_prompt_chars must be >= 1, got {chars!r}")
        self.output_mode = self.p("output_mode")
        if self.output_mode not in ("topic", "action"):
            raise ValueError(f"output_mode must be 'topic' or 'action', got {self.output_mode!r}")
        self.robot = RobotDescription.from_yaml(
            self.p("robot_description_path") or default_robot_path()
        )
        video_model, idm, test_double = load_models(
            self.p("executor_pipeline_dir"),
            self.p("idm_dir"),
            self.robot,
            self.p("seed"),
            device=str(self.p("model_device")),
            base_dir=str(self.p("executor_base_dir")),
        )
        self.warmup_s = None
        if self.p("warmup") and hasattr(video_model, "warm_up"):
            self.warmup_s = video_model.warm_up()
            self.get_logger().info(f"video model warmed up in {self.warmup_s:.2f} s")
        if test_double:
            self.get_logger().warning(
                "NO MODEL PATHS GIVEN: using TINY RANDOM TEST-DOUBLE models (random weights); "
                "motion is meaningless. Set executor_pipeline_dir and idm_dir for real use."
            )
        self.using_test_models = test_double
        self.runner = self._runner(video_model, idm)
        self.rectifier = rectifier_from_parameters(self.p("camera_info_path"), self.p("rectify"))
        self.model_input = model_input_for(self.rectifier)  # (H, W, 3) uint8 -> what models see
        self.sensors = SensorCache(self.robot.joint_names)
        self.media = GoalMedia(
            Path(self.p("video_dir")),
            float(self.p("video_fps")),
            float(self.p("executed_video_fps")),
            self.get_logger(),
        )
        self._cb = ReentrantCallbackGroup()
        self.recording = GoalRecording(self, float(self.p("video_fps")), self._cb)
        self.connected = connect_arm(
            self, self.sensors, self._cb, self._on_image, self.output_mode, self.model_input
        )
        self.arm = self.connected.arm
        self.arm.recording = self.recording
        self.goals = GoalServer(
            self,
            self._run_goal,
            self.recording,
            self._cb,
            max_prompt_chars=lambda: int(self.p("max_prompt_chars")),
        )
        verifier = self.arm.config.verifier_name
        judge = f"task verifier {verifier!r}" if verifier else "no task verifier"
        self.get_logger().info(
            f"ready: output {self.output_mode!r} via {self.p('controller_name')!r}, "
            f"IDM {self.runner.config.idm_mode}, {judge}"
        )

    def p(self, name: str) -> object:
        return self.get_parameter(name).value

    def _runner(self, video_model: object, idm: object) -> GoalRunner:
        config = self._runner_config()
        critic = make_critic(
            str(self.p("candidate_judge")), config.num_candidates, str(self.p("critic_path"))
        )
        gate = kinematic_grasp_gate(self.robot, float(self.p("grasp_gate_max_height_m")))
        return GoalRunner(video_model, idm, self.robot, config, critic=critic, grasp_gate=gate)

    def _runner_config(self) -> GoalRunnerConfig:
        return GoalRunnerConfig(
            idm_mode=check_idm_mode(self.p("idm_mode")),
            max_replans=int(self.p("max_replans")),
            replan_from_home=bool(self.p("replan_from_home")),
            home_speed_rad_s=float(self.p("home_speed_rad_s")),
            limit_tolerance_rad=float(self.p("limit_tolerance_rad")),
            goal_tolerance_rad=float(self.p("goal_tolerance_rad")),
            verify_each_chunk=bool(self.p("verify_each_chunk")),
            retime_profile=check_retime_profile(str(self.p("retime_profile"))),
            num_candidates=int(self.p("num_candidates")),
            timeout_s=float(self.p("goal_timeout_s")),
            seed=int(self.p("seed")),
        )

    def joint_positions_rad(self) -> np.ndarray | None:
        return self.sensors.joint_positions_rad()

    @property
    def images_rejected(self) -> int:
        return self.sensors.images_rejected

    @property
    def last_image_error(self) -> str:
        return self.sensors.last_image_error

    # -- subscriptions
    def _on_image(self, msg: Image) -> None:
        receive_image(self, msg, self.sensors, self.media, self.recording)

    def shutdown_worker(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after its current goal (daemon: abandoned after ``timeout_s``)."""
        self.goals.shutdown(timeout_s)
        self.media.shutdown()  # a video being written is finished, not lost
        self.recording.shutdown()

    # -- one goal
    def _run_goal(self, job: Job) -> GoalResult:
        gh, goal = job.goal_handle, job.goal_handle.request
        timeout_s = goal.timeout_s if goal.timeout_s > 0 else self.runner.config.timeout_s
        guard = Guard(timeout_s, cancel_requested=lambda: gh.is_cancel_requested)
        max_replans = goal.max_replans if goal.max_replans >= 0 else None
        # Parameters are read per goal: `ros2 param set` takes effect on the next goal.
        self.arm.config = arm_config(self, self.arm.config.output_mode)
        self.runner = self._runner(self.runner.video_model, self.runner.idm)
        self.recording.begin(gh, str(self.p("record_dir")))
        try:
            self.arm.check_verifier()
        except GoalAborted as exc:
            return GoalResult("aborted", str(exc), [], [])
        feedback = GoalFeedback(self.media, gh, job.result, self.recording)
        return self.runner.run(goal.task_prompt, self.arm, guard, feedback, max_replans)


def main(args: list[str] | None = None) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads() // 2))
    # A goal in flight cannot finish once the context is down: do not wait long for it.
    shutdown = lambda node: node.shutdown_worker(timeout_s=1.0)  # noqa: E731
    run_node(ExecutorNode, num_threads=2, on_shutdown=shutdown, exit_process=True, args=args)


if __name__ == "__main__":
    main()
