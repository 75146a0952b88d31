"""calibration_capture_node: camera intrinsics from a live ``image_raw`` topic.

    python -m executor_bringup.calibration_capture_node --preset charuco_7x5 \
        --intrinsics.output=config/cameras/scene_camera.yaml --topic=/camera/image_raw

Thin adapter: every ``detect_period_s`` a frame is decoded and handed to the pure
:class:`calibration.intrinsics_cli.StreamCalibrator`, which keeps still, new views until
the image is covered; then it calibrates, writes the camera_info YAML (+ report) and the
node exits. Options are those of ``executor-calibrate-intrinsics`` under ``intrinsics.``
(same presets), plus ``topic``, ``detect_period_s`` and ``timeout_s``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image

from calibration.intrinsics import CalibrationError, IntrinsicsResult
from calibration.intrinsics_cli import PRESETS as INTRINSICS_PRESETS
from calibration.intrinsics_cli import IntrinsicsCliConfig, StreamCalibrator
from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.image_conversion import ImageConversionError, image_to_array
from executor_bringup.qos import sensor_qos
from executor_core.config_cli import ConfigError, check_non_negative, check_positive, parse_config


@dataclass(frozen=True)
class CaptureConfig:
    intrinsics: IntrinsicsCliConfig = field(default_factory=IntrinsicsCliConfig)
    topic: str = "image_raw"
    detect_period_s: float = 0.2  # detection costs ~10-50 ms; no need to see every frame
    timeout_s: float = 600.0  # give up (calibrating with what was kept) after this long

    def __post_init__(self) -> None:
        if not self.topic:
            raise ValueError(f"topic must not be empty, got {self.topic!r}")
        check_non_negative(self, "detect_period_s")
        check_positive(self, "timeout_s")


PRESETS: dict[str, CaptureConfig] = {
    name: CaptureConfig(intrinsics=cfg) for name, cfg in INTRINSICS_PRESETS.items()
}


def image_msg_to_gray(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (mono8, rgb8, bgr8, ...) -> (H, W) uint8 grey."""
    array = image_to_array(msg)
    if array.dtype != np.uint8:
        raise ImageConversionError(f"calibration needs 8-bit images, got {msg.encoding!r}")
    if array.ndim == 2 or array.shape[2] == 1:
        return np.ascontiguousarray(array[:, :, 0])
    code = cv2.COLOR_RGB2GRAY if msg.encoding.startswith("rgb") else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(np.ascontiguousarray(array[:, :, :3]), code)


class CalibrationCaptureNode(Node):
    def __init__(self, cfg: CaptureConfig, context: Context | None = None) -> None:
        super().__init__("calibration_capture", context=context)
        self.cfg = cfg
        self.stream = StreamCalibrator(cfg.intrinsics)
        self.result: IntrinsicsResult | None = None
        self.error: str | None = None
        self.done = False
        self._last_detect_s = -float("inf")
        self._start_s = time.monotonic()
        self.create_subscription(Image, cfg.topic, self.on_image, sensor_qos())
        self.get_logger().info(
            f"waiting for {cfg.intrinsics.target.kind} views on {cfg.topic}; move the "
            f"target across the image, near and far, tilted, and hold each pose still"
        )

    def on_image(self, msg: Image) -> None:
        if self.done:
            return
        now_s = time.monotonic()
        timed_out = now_s - self._start_s > self.cfg.timeout_s
        if not timed_out and now_s - self._last_detect_s < self.cfg.detect_period_s:
            return
        self._last_detect_s = now_s
        try:
            gray = image_msg_to_gray(msg)
        except ImageConversionError as exc:
            self.get_logger().error(f"cannot use frame: {exc}", throttle_duration_sec=5.0)
            return
        stamp = msg.header.stamp
        name = f"{self.cfg.topic}@{stamp.sec}.{stamp.nanosec:09d}"
        if self.stream.offer(gray, name) or timed_out:
            self.finish()

    def finish(self) -> None:
        self.done = True
        try:
            self.result = self.stream.finish()
        except CalibrationError as exc:
            self.error = str(exc)
            self.get_logger().error(f"calibration refused: {exc}")
            return
        self.get_logger().info(
            f"wrote {self.cfg.intrinsics.output}: rms {self.result.rms_px:.3f} px over "
            f"{len(self.result.image_names)} views"
        )


def main(args: list[str] | None = None) -> int:
    argv = list(sys.argv if args is None else args)
    apply_default_transports()  # before rclpy.init: every process must agree
    rclpy.init(args=argv)
    # Our options are what rclpy leaves after removing --ros-args ... sections.
    ours = rclpy.utilities.remove_ros_args(argv)[1:]
    try:
        cfg = parse_config(CaptureConfig, ours, PRESETS)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    node = CalibrationCaptureNode(cfg)
    try:
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.5)
    except (KeyboardInterrupt, ExternalShutdownException):
        # Ctrl-C: calibrate with the views kept so far rather than losing them.
        if not node.done and node.stream.selector.kept:
            node.finish()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if node.result is not None:
        print(node.result.report())
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
