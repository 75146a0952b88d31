"""Goal accepted -> first trajectory point at the arm, through executor and safety nodes.

    .venv/bin/python benchmarks/bench_goal_latency.py [--goals 30]

Real ``executor_node`` (tiny random test-double models) and ``safety_node`` (action
proxy) processes; this process is the operator (goal client, heartbeat) and the camera and
arm end of the graph: it publishes images and joint_states and serves
``arm_controller/follow_joint_trajectory``, stamping when a trajectory arrives (one
clock for both ends). Reported, p50/p99 over the goals:

- included: goal accepted -> trajectory at the arm (imagination + IDM + transport + checks)
- excluded: the same minus the model time, which is measured as the time between the
  ``imagining`` and ``executing`` feedback messages.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from control_msgs.action import FollowJointTrajectory
from executor_interfaces.action import ExecuteTask
from rclpy.action import ActionClient, ActionServer
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Empty

from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.qos import command_qos, sensor_qos
from executor_bringup.spin_executors import QueueSafeMultiThreadedExecutor

REPO = Path(__file__).resolve().parents[1]
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


class BenchEnds(Node):
    """Camera, arm and operator ends of the graph in one node (one clock)."""

    def __init__(self) -> None:
        super().__init__("bench_ends", namespace="/bench")
        cb = ReentrantCallbackGroup()
        self.q = np.zeros(6)
        self.arrivals: list[float] = []
        self._img = self.create_publisher(Image, "image_raw", sensor_qos())
        self._js = self.create_publisher(JointState, "joint_states", sensor_qos())
        self._hb = self.create_publisher(Empty, "heartbeat", command_qos())
        self.create_timer(0.1, self._camera, callback_group=cb)
        self.create_timer(0.02, self._joint_states, callback_group=cb)
        self.create_timer(0.1, lambda: self._hb.publish(Empty()), callback_group=cb)
        self._arm = ActionServer(
            self,
            FollowJointTrajectory,
            "arm_controller/follow_joint_trajectory",
            self._execute,
            callback_group=cb,
        )
        self.client = ActionClient(self, ExecuteTask, "execute_task", callback_group=cb)
        self._rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)

    def _camera(self) -> None:
        msg = fill_image_msg(Image(), self._rgb, "rgb8")
        msg.header.stamp = self.get_clock().now().to_msg()
        self._img.publish(msg)

    def _joint_states(self) -> None:
        self._js.publish(JointState(name=NAMES, position=self.q.tolist()))

    def _execute(self, goal_handle: object) -> FollowJointTrajectory.Result:
        self.arrivals.append(time.monotonic())
        traj = goal_handle.request.trajectory
        order = [list(traj.joint_names).index(n) for n in NAMES]
        self.q = np.array(traj.points[-1].positions)[order]  # an ideal arm: already there
        goal_handle.succeed()
        return FollowJointTrajectory.Result(error_code=0)


def wait(future: object, timeout_s: float) -> object:
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    if not done.wait(timeout_s):
        raise TimeoutError("future not done")
    return future.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--goals", type=int, default=30)
    parser.add_argument("--domain", type=int, default=1 + (os.getpid() + 101) % 200)
    args = parser.parse_args()

    env = {**os.environ, "ROS_DOMAIN_ID": str(args.domain), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                f"executor_bringup.{name}",
                "--ros-args",
                "-r",
                "__ns:=/bench",
                *extra,
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, extra in (
            ("safety_node", []),
            ("executor_node", ["-p", "video_dir:=/tmp/bench_goal_videos"]),
        )
    ]
    rclpy.init(domain_id=args.domain)
    ends = BenchEnds()
    spin_executor = QueueSafeMultiThreadedExecutor(num_threads=4)
    spin_executor.add_node(ends)
    spinner = threading.Thread(target=spin_executor.spin, daemon=True)
    spinner.start()
    included_ms, excluded_ms, model_ms = [], [], []
    try:
        if not ends.client.wait_for_server(timeout_sec=120):
            raise SystemExit("executor_node did not come up")
        time.sleep(1.0)  # images and joint_states flowing, safety sees the heartbeat
        for i in range(args.goals + 1):  # goal 0 warms up (first model call, discovery)
            stamps: dict[str, float] = {}

            def on_feedback(fb: object, stamps: dict[str, float] = stamps) -> None:
                stamps.setdefault(fb.feedback.phase, time.monotonic())

            n_before = len(ends.arrivals)
            handle = wait(
                ends.client.send_goal_async(
                    ExecuteTask.Goal(task_prompt="put the red cube in the bowl"),
                    feedback_callback=on_feedback,
                ),
                10,
            )
            accepted = time.monotonic()  # the acceptance reply reached the client
            if not handle.accepted:
                raise SystemExit(f"goal {i} rejected")
            result = wait(handle.get_result_async(), 60)
            if not result.result.success or len(ends.arrivals) != n_before + 1:
                raise SystemExit(f"goal {i} failed: {result.result.message}")
            if i == 0:
                continue
            total = ends.arrivals[-1] - accepted
            model = stamps["executing"] - stamps["imagining"]
            included_ms.append(1e3 * total)
            model_ms.append(1e3 * model)
            excluded_ms.append(1e3 * (total - model))
    finally:
        spin_executor.shutdown()
        for proc in procs:
            proc.send_signal(2)
            proc.wait(timeout=10)
        ends.destroy_node()
        rclpy.try_shutdown()

    def pct(values: list[float]) -> str:
        return f"p50 {np.percentile(values, 50):7.2f} ms, p99 {np.percentile(values, 99):7.2f} ms"

    print(
        f"goal accepted -> first trajectory point at the arm, {args.goals} goals, "
        "executor_node (tiny test-double models) -> safety_node (action proxy) -> arm"
    )
    print(f"  model time included: {pct(included_ms)}")
    print(f"  model time excluded: {pct(excluded_ms)}")
    print(f"  model time (imagining -> executing feedback): {pct(model_ms)}")


if __name__ == "__main__":
    main()
