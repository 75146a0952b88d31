"""Image transport camera -> executor over loopback DDS: rate, drops, latency.

    .venv/bin/python benchmarks/bench_image_transport.py [--duration 60] [--rate 30]
        [--transport default|fastdds_default|large_data]

A real ``camera_node`` process (synthetic source, 640x480 rgb8) publishes; this process
subscribes exactly as ``executor_node`` does (same QoS, same zero-copy decode) and
measures: received rate, drops (from the frame counter the synthetic source writes into
row 0), and latency = receive time - header.stamp (same host clock). Targets:
>= 29.5 Hz, 0 drops, p99 < 10 ms.
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
from rclpy.node import Node
from sensor_msgs.msg import Image

from executor_bringup.dds_transport import TRANSPORT_CHOICES, select_transports
from executor_bringup.image_conversion import image_to_rgb8
from executor_bringup.qos import sensor_qos

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--domain", type=int, default=1 + os.getpid() % 200)
    parser.add_argument(
        "--transport",
        choices=TRANSPORT_CHOICES,
        default="default",
        help="default = the stack's default (config/fastdds_profile.xml: large shared "
        "memory + UDPv4, what every entry point sets up); fastdds_default = Fast DDS's "
        "builtin DEFAULT (UDP + a 512 KiB shared-memory segment); large_data = the builtin "
        "LARGE_DATA (TCP + shared memory)",
    )
    args = parser.parse_args()

    # Before this process's rclpy.init, and inherited by the camera.
    in_effect = select_transports(os.environ, args.transport)
    env = {**os.environ, "ROS_DOMAIN_ID": str(args.domain)}
    camera = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "executor_bringup.camera_node",
            "--ros-args",
            "-r",
            "__ns:=/bench",
            "-p",
            "source:=synthetic",
            "-p",
            f"rate_hz:={args.rate}",
            "-p",
            f"width:={args.width}",
            "-p",
            f"height:={args.height}",
            "-p",
            "encoding:=rgb8",
            "-p",
            "autostart:=true",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rclpy.init(domain_id=args.domain)
    node = Node("bench_receiver", namespace="/bench")
    counters: list[int] = []
    latencies_s: list[float] = []
    recv_times_s: list[float] = []
    measuring = [False]

    def on_image(msg: Image) -> None:
        now_s = node.get_clock().now().nanoseconds * 1e-9
        rgb = image_to_rgb8(msg)  # what the executor does with every frame
        if not measuring[0]:
            return
        stamp_s = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        latencies_s.append(now_s - stamp_s)
        recv_times_s.append(time.monotonic())
        counters.append(int(np.frombuffer(rgb[0, :4, 0].tobytes(), np.uint32)[0]))

    node.create_subscription(Image, "image_raw", on_image, sensor_qos(5))
    spin_executor = SingleThreadedExecutor()
    spin_executor.add_node(node)
    try:
        warm_end = time.monotonic() + 60
        while node.count_publishers("image_raw") == 0 and time.monotonic() < warm_end:
            spin_executor.spin_once(timeout_sec=0.1)
        warm = time.monotonic() + 2.0  # discovery and first frames
        while time.monotonic() < warm:
            spin_executor.spin_once(timeout_sec=0.1)
        measuring[0] = True
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            spin_executor.spin_once(timeout_sec=0.1)
    finally:
        camera.send_signal(2)
        camera.wait(timeout=10)
        node.destroy_node()
        rclpy.try_shutdown()

    if len(counters) < 2:
        print(f"received {len(counters)} frames: nothing to measure")
        sys.exit(1)
    span = np.diff(counters)
    drops = int(np.sum(span[span > 0] - 1))
    rate_hz = (len(recv_times_s) - 1) / (recv_times_s[-1] - recv_times_s[0])
    lat_ms = 1e3 * np.array(latencies_s)
    print(
        f"image transport {args.width}x{args.height} rgb8 @ {args.rate:g} Hz for "
        f"{args.duration:g} s, transport {args.transport} ({in_effect}; camera_node "
        "process -> executor-style subscriber)"
    )
    produced = counters[-1] - counters[0] + 1
    print(
        f"  camera produced {produced} frames in the window = "
        f"{produced / (recv_times_s[-1] - recv_times_s[0]):.2f} Hz (publisher side)"
    )
    print(f"  received: {len(counters)} frames, rate {rate_hz:.2f} Hz")
    print(f"  drops: {drops} (frame counter gaps), out-of-order: {int(np.sum(span <= 0))}")
    print(
        f"  latency: p50 {np.percentile(lat_ms, 50):.2f} ms, p99 "
        f"{np.percentile(lat_ms, 99):.2f} ms, max {lat_ms.max():.2f} ms"
    )


if __name__ == "__main__":
    main()
