"""camera_node: publishes ``image_raw`` + ``camera_info`` from a camera, a video, or a pattern.

Lifecycle (managed) node: configure opens nothing but validates the parameters and loads
``camera_info_url``; activate opens the source and starts a capture thread (V4L2 reads
block, so they do not belong in an executor callback); deactivate stops and releases it.
``autostart: true`` configures and activates at start-up.

``source``:
- ``v4l2:<index or /dev/videoN>``: an OpenCV V4L2 device (``width``/``height`` requested);
- ``file:<path>``: a video file, replayed at ``rate_hz`` (``loop`` to repeat);
- ``synthetic``: a moving test pattern with the frame counter in the first 4 bytes of
  every row 0 (used by the transport benchmark to count drops).

In simulation there is no camera_node: ``sim_arm_node`` renders and publishes
``image_raw``/``camera_info`` itself, so the image and the joint state share one clock.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, Image

from calibration.camera_info_io import CameraInfoData, load_camera_info
from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.node_main import autostart_or_fail, run_node
from executor_bringup.qos import sensor_qos

logger = logging.getLogger(__name__)

OUTPUT_ENCODINGS = ("rgb8", "bgr8", "mono8")


def camera_info_path(url: str) -> Path | None:
    """``file:///a/b.yaml``, ``/a/b.yaml`` or ``""`` (none) -> path; other schemes refused."""
    if not url:
        return None
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    if "://" in url:
        raise ValueError(f"camera_info_url {url!r}: only file:// URLs and plain paths are read")
    return Path(url)


class FrameSource:
    """Frames as BGR uint8 (OpenCV's order); ``read`` returns None at the end of a file."""

    def __init__(self, spec: str, width_px: int, height_px: int, loop: bool) -> None:
        self.spec, self.loop, self.count = spec, loop, 0
        self.size = (width_px, height_px)
        self.cap = None
        if spec == "synthetic":
            return
        kind, _, where = spec.partition(":")
        if kind == "v4l2":
            device = int(where) if where.isdigit() else where
            self.cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width_px)
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height_px)
        elif kind == "file":
            if not Path(where).is_file():
                raise FileNotFoundError(f"source {spec!r}: no such video file")
            self.cap = cv2.VideoCapture(where)
        else:
            raise ValueError(
                f"source must be 'v4l2:<dev>', 'file:<path>' or 'synthetic', got {spec!r}"
            )
        if not self.cap.isOpened():
            raise OSError(f"source {spec!r}: OpenCV could not open it")

    def read(self) -> np.ndarray | None:  # (H, W, 3) uint8 BGR
        self.count += 1
        if self.cap is None:
            w, h = self.size
            frame = np.zeros((h, w, 3), np.uint8)
            x = (4 * self.count) % w
            frame[:, x : x + 8] = 255  # a moving bar
            frame[0, :4, :] = np.frombuffer(np.uint32(self.count).tobytes(), np.uint8)[:, None]
            return frame
        ok, frame = self.cap.read()
        if not ok and self.loop and self.spec.startswith("file:"):
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read()
        return frame if ok else None

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()


class CameraNode(LifecycleNode):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("camera_node", **kwargs)
        p = self.declare_parameter
        p("source", "v4l2:0")
        p("rate_hz", 30.0)
        p("width", 640)
        p("height", 480)
        p("encoding", "rgb8")
        p("frame_id", "scene_camera")
        p("camera_info_url", "")
        p("loop", True)
        p("autostart", False)
        self._source: FrameSource | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.frames_published = 0
        if self.get_parameter("autostart").value:
            autostart_or_fail(self)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        g = self.get_parameter
        self.encoding = g("encoding").value
        self.rate_hz = float(g("rate_hz").value)
        try:
            if self.encoding not in OUTPUT_ENCODINGS:
                raise ValueError(
                    f"encoding must be one of {OUTPUT_ENCODINGS}, got {self.encoding!r}"
                )
            if not 0 < self.rate_hz <= 240:
                raise ValueError(f"rate_hz must be in (0, 240], got {self.rate_hz!r}")
            path = camera_info_path(g("camera_info_url").value)
            self.info: CameraInfoData | None = load_camera_info(path) if path else None
        except (ValueError, OSError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        if self.info is None:
            self.get_logger().warning("no camera_info_url: camera_info carries no calibration")
        self._img_pub = self.create_publisher(Image, "image_raw", sensor_qos())
        self._info_pub = self.create_publisher(CameraInfo, "camera_info", sensor_qos())
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        g = self.get_parameter
        try:
            self._source = FrameSource(
                g("source").value,
                int(g("width").value),
                int(g("height").value),
                bool(g("loop").value),
            )
        except (ValueError, OSError) as exc:
            self.get_logger().error(f"activate failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._stop.clear()
        self._thread = threading.Thread(target=self._capture_loop, name="camera", daemon=True)
        self._thread.start()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self._source is not None:
            self._source.release()
        self._source = None
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_publisher(self._img_pub)
        self.destroy_publisher(self._info_pub)
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop.set()
        return TransitionCallbackReturn.SUCCESS

    def _capture_loop(self) -> None:
        period_s = 1.0 / self.rate_hz
        next_s = time.monotonic()
        while not self._stop.is_set() and self.context.ok():
            frame = self._source.read()
            if frame is None:
                self.get_logger().info("end of the video file; camera stops publishing")
                return
            self.publish(frame)
            next_s = max(next_s + period_s, time.monotonic() - period_s)
            self._stop.wait(max(0.0, next_s - time.monotonic()))

    def publish(self, frame_bgr: np.ndarray) -> None:
        """(H, W, 3) uint8 BGR -> image_raw (+ camera_info) in the configured encoding."""
        if self.encoding == "bgr8":
            image = frame_bgr
        elif self.encoding == "rgb8":
            image = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        else:
            image = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        msg = fill_image_msg(Image(), image, self.encoding)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.get_parameter("frame_id").value
        info = CameraInfo(header=msg.header, width=msg.width, height=msg.height)
        if self.info is not None:
            if self.info.image_size_px != (msg.width, msg.height):
                self.get_logger().error(
                    f"camera_info is for {self.info.image_size_px} but frames are "
                    f"{(msg.width, msg.height)}; not publishing a wrong calibration",
                    throttle_duration_sec=5.0,
                )
            else:
                for key, value in self.info.as_msg_fields().items():
                    setattr(info, key, value)
        self._img_pub.publish(msg)
        self._info_pub.publish(info)
        self.frames_published += 1


def main(args: list[str] | None = None) -> None:
    run_node(CameraNode, args=args)


if __name__ == "__main__":
    main()
