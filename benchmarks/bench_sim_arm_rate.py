"""Publishing rates of the simulated arm: joint_states (control loop) and image_raw (camera).

    .venv/bin/python benchmarks/bench_sim_arm_rate.py [--duration 10]

Starts a real ``sim_arm_node`` process (tabletop scene, autostart, the bringup's
parameter file) and counts what arrives in this process over DDS. Nominal rates are the
node's ``update_rate_hz`` (50) and ``camera_rate_hz`` (10); a loaded 2-core machine lowers
both, which is why these figures live here and not in a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image, JointState

from executor_bringup.qos import sensor_qos

REPO = Path(__file__).resolve().parents[1]


def _rate_hz(arrivals_s: list[float]) -> tuple[float, float]:
    """(mean rate, p99 gap in ms) of a list of arrival times."""
    if len(arrivals_s) < 2:
        return 0.0, float("nan")
    gaps_s = np.diff(arrivals_s)
    return (len(arrivals_s) - 1) / (arrivals_s[-1] - arrivals_s[0]), 1e3 * np.percentile(gaps_s, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--domain", type=int, default=1 + (os.getpid() + 57) % 200)
    args = parser.parse_args()

    env = {**os.environ, "ROS_DOMAIN_ID": str(args.domain), "MUJOCO_GL": "egl"}
    arm = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "executor_bringup.sim_arm_node",
            "--ros-args",
            "-r",
            "__ns:=/bench",
            "--params-file",
            str(REPO / "config" / "sim_arm_node.yaml"),
            "-p",
            "autostart:=true",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rclpy.init(domain_id=args.domain)
    node = rclpy.create_node("bench_rate", namespace="/bench")
    states_s: list[float] = []
    images_s: list[float] = []
    node.create_subscription(
        JointState, "joint_states", lambda _: states_s.append(time.monotonic()), sensor_qos()
    )
    node.create_subscription(
        Image, "image_raw", lambda _: images_s.append(time.monotonic()), sensor_qos()
    )
    spin_executor = SingleThreadedExecutor()
    spin_executor.add_node(node)
    try:
        deadline = time.monotonic() + 60
        while (not states_s or not images_s) and time.monotonic() < deadline:
            spin_executor.spin_once(timeout_sec=0.1)
        if not states_s or not images_s:
            raise SystemExit("sim_arm_node published nothing within 60 s")
        states_s.clear()
        images_s.clear()
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            spin_executor.spin_once(timeout_sec=0.05)
    finally:
        arm.terminate()
        arm.wait(timeout=10)
        node.destroy_node()
        rclpy.shutdown()
    js_hz, js_gap_ms = _rate_hz(states_s)
    img_hz, img_gap_ms = _rate_hz(images_s)
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    print(f"joint_states: {js_hz:6.1f} Hz (nominal 50), p99 gap {js_gap_ms:6.1f} ms")
    print(f"image_raw:    {img_hz:6.1f} Hz (nominal 10), p99 gap {img_gap_ms:6.1f} ms")


if __name__ == "__main__":
    main()
