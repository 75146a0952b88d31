"""The node and the benchmark drive the same goal runner: same seed and models, same chunks.

One side is the closed-loop benchmark's path: ``GoalRunner`` over ``SimArm`` on a
``TabletopEnv`` reset to scene seed 11, stepped directly. The other is the robot's path:
``executor_node`` (in this process, its ``RosArm``) against ``sim_arm_node`` (its own
process, the same scene seed, real DDS, real-time control at 50 Hz), with the simulator's
task predicate as the verifier on both sides. The models are the node's tiny random test
doubles, built by the same ``load_models`` with the same seed, on both sides.

What must agree exactly is the loop: the segments, the chunks per segment, the points
and clocks of every chunk, the verdict and the message's form. The chunk positions agree
as closely as the two simulators' states do: the first chunk is computed from the same
initial camera frame and joint state (up to the position servo's settling in the node's
real-time simulator), later chunks from frames after motions that the two controllers
sample with the same splines but at different rates (the benchmark steps at the camera's
10 Hz, the node's controller ticks at 50 Hz in real time), so only their shape and bound
are compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from executor_interfaces.action import ExecuteTask
from rclpy.parameter import Parameter
from ros_helpers import (
    RosSession,
    SafeActionClient,
    fresh_domain_id,
    node_process,
    result_of,
    stop_process,
    wait_for,
)

from executor_bringup.executor_node import ExecutorNode
from executor_bringup.models import load_models
from executor_core.goal_runner import GoalRunner, GoalRunnerConfig, Guard
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_sim.env import EnvConfig, make_env
from executor_sim.sim_arm import SimArm

pytestmark = pytest.mark.ros
NS = "/one_goal_loop"
SCENE_SEED = 11
PROMPT = "put the red cube in the bowl"
CHUNK = 4  # points per IDM chunk (the tiny IDM's horizon)
NUM_GOAL_FRAMES = 4  # the tiny video model imagines 5 frames


def _sim_adapter_run(idm_mode: str):
    robot = RobotDescription.from_yaml(default_robot_path())
    video_model, idm, _ = load_models("", "", robot, seed=0)
    env = make_env(EnvConfig(image_size_px=64))
    try:
        env.reset(SCENE_SEED)
        arm = SimArm(env, env.task)
        config = GoalRunnerConfig(idm_mode=idm_mode, max_replans=0, seed=0)
        result = GoalRunner(video_model, idm, robot, config).run(PROMPT, arm, Guard(60.0))
    finally:
        env.close()
    return result


@pytest.fixture
def graph(tmp_path_factory: pytest.TempPathFactory):
    # A fresh sim arm per test: each goal starts from the scene's initial state.
    logs = tmp_path_factory.mktemp("one_loop")
    domain = fresh_domain_id()
    sim = node_process(
        "sim_arm_node",
        domain,
        NS,
        {"autostart": True, "scene_seed": SCENE_SEED, "image_size_px": 64},
        logs / "sim.log",
    )
    session = RosSession(domain)
    nodes = {}
    try:
        for mode in ("closed_loop", "open_loop"):
            nodes[mode] = session.add(
                ExecutorNode(
                    namespace=f"{NS}/{mode}",
                    context=session.context,
                    parameter_overrides=[
                        Parameter("idm_mode", value=mode),
                        Parameter("seed", value=0),
                        Parameter("controller_name", value=f"{NS}/arm_controller"),
                        Parameter("success_service", value=f"{NS}/task_success"),
                        Parameter("max_image_age_s", value=5.0),
                        Parameter("video_dir", value=str(logs / "videos")),
                    ],
                    # the sim arm's topics live in NS, the two executors one level down
                    cli_args=[
                        "--ros-args",
                        "-r",
                        f"image_raw:={NS}/image_raw",
                        "-r",
                        f"joint_states:={NS}/joint_states",
                    ],
                )
            )
        probe = session.node("probe", NS)
        for node in nodes.values():
            wait_for(lambda n=node: n.joint_positions_rad() is not None, 60, "joint_states")
            wait_for(lambda n=node: n.sensors.image is not None, 60, "image_raw")
        yield nodes, probe
    finally:
        for node in nodes.values():
            node.shutdown_worker()
        session.close()
        stop_process(sim)


def _ros_run(graph, mode: str):
    _, probe = graph
    client = SafeActionClient(probe, ExecuteTask, f"{mode}/execute_task")
    assert client.wait_for_server(timeout_sec=20)
    goal = ExecuteTask.Goal(task_prompt=PROMPT, max_replans=0)
    handle = result_of(client.send_goal_async(goal), 10)
    assert handle.accepted
    return result_of(handle.get_result_async(), 90)


def _points(msg: object) -> tuple[np.ndarray, np.ndarray]:
    positions = np.array([p.positions for p in msg.points])
    times = np.array([p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in msg.points])
    return positions, times


def test_closed_loop_goal_is_the_same_loop_through_ros_and_the_simulator(graph) -> None:
    sim = _sim_adapter_run("closed_loop")
    ros = _ros_run(graph, "closed_loop")
    # Same verdict and message form (random models: the task is not done).
    assert ros.status == GoalStatus.STATUS_ABORTED
    assert sim.status == "aborted"
    assert sim.message.startswith("task predicate not met after 0 replan(s): the simulator says")
    assert ros.result.message.startswith("task predicate not met after 0 replan(s): ")
    assert ros.result.replans_used == sim.replans_used == 0
    # Same chunks: one per goal frame, 4 points each, on the same clocks.
    (segment,) = sim.segments
    assert len(segment.sent) == NUM_GOAL_FRAMES
    sim_trajectory = sim.last_trajectory
    ros_positions, ros_times = _points(ros.result.trajectory)
    assert ros_positions.shape == sim_trajectory.positions_rad.shape == (NUM_GOAL_FRAMES * 4, 6)
    np.testing.assert_allclose(ros_times, sim_trajectory.time_from_start_s, atol=1e-6)
    # The first chunk comes from the same camera frame and joint state on both sides.
    np.testing.assert_allclose(
        ros_positions[:CHUNK], sim_trajectory.positions_rad[:CHUNK], atol=2e-3
    )
    # Later chunks: from each side's own measured state, within the tiny IDM's step bound.
    assert np.max(np.abs(ros_positions - sim_trajectory.positions_rad)) < 0.3


def test_open_loop_goal_sends_the_same_trajectory_through_ros_and_the_simulator(graph) -> None:
    sim = _sim_adapter_run("open_loop")
    ros = _ros_run(graph, "open_loop")
    assert ros.status == GoalStatus.STATUS_ABORTED
    assert sim.status == "aborted"
    (segment,) = sim.segments
    (sent,) = segment.sent  # one trajectory, chained from the imagined frames up front
    ros_positions, ros_times = _points(ros.result.trajectory)
    assert ros_positions.shape == sent.positions_rad.shape == (NUM_GOAL_FRAMES * 4, 6)
    np.testing.assert_allclose(ros_times, sent.time_from_start_s, atol=1e-6)
    # Everything follows from the first frame and joint state: the whole trajectory agrees.
    np.testing.assert_allclose(ros_positions, sent.positions_rad, atol=2e-3)
