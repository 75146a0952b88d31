"""camera_node over real DDS: lifecycle, a video-file source, camera_info from YAML."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter
from ros_helpers import RosSession, fresh_domain_id, wait_for
from sensor_msgs.msg import CameraInfo, Image

from calibration.camera_info_io import CameraInfoData, save_camera_info
from executor_bringup.camera_node import CameraNode, FrameSource, camera_info_path
from executor_bringup.image_conversion import image_to_array, image_to_rgb8
from executor_bringup.qos import sensor_qos

W, H = 48, 32


def _video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for _ in range(5):
        frame = np.zeros((H, W, 3), np.uint8)
        frame[..., 2] = 200  # BGR: red
        writer.write(frame)
    writer.release()
    return path


def _info(path: Path) -> Path:
    k = np.array([[40.0, 0, 24], [0, 40.0, 16], [0, 0, 1]])
    data = CameraInfoData(
        W, H, "test_cam", k, "plumb_bob", np.zeros(5), np.eye(3), np.hstack([k, np.zeros((3, 1))])
    )
    save_camera_info(data, path)
    return path


def test_camera_info_path_and_synthetic_counter() -> None:
    assert camera_info_path("") is None
    assert camera_info_path("file:///a/b.yaml") == Path("/a/b.yaml")
    with pytest.raises(ValueError, match=r"'package://x/y\.yaml'"):
        camera_info_path("package://x/y.yaml")
    src = FrameSource("synthetic", 16, 8, loop=True)
    src.read()
    frame = src.read()
    assert frame.shape == (8, 16, 3)
    assert int(np.frombuffer(frame[0, :4, 0].tobytes(), np.uint32)[0]) == 2
    with pytest.raises(ValueError, match="'rtsp:cam'"):
        FrameSource("rtsp:cam", 16, 8, loop=True)


def _stamp(msg: object) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


@pytest.mark.ros
def test_file_source_lifecycle_and_camera_info(tmp_path: Path) -> None:
    session = RosSession(fresh_domain_id())
    try:
        node = session.add(
            CameraNode(
                namespace="/cam_test",
                context=session.context,
                parameter_overrides=[
                    Parameter("source", value=f"file:{_video(tmp_path / 'v.avi')}"),
                    Parameter("camera_info_url", value=f"file://{_info(tmp_path / 'ci.yaml')}"),
                    Parameter("rate_hz", value=20.0),
                    Parameter("encoding", value="mono8"),
                ],
            )
        )
        probe = session.node("probe", "/cam_test")
        images: list = []
        infos: list = []
        probe.create_subscription(Image, "image_raw", images.append, sensor_qos())
        probe.create_subscription(CameraInfo, "camera_info", infos.append, sensor_qos())
        time.sleep(0.3)
        assert images == []  # unconfigured
        assert node.trigger_configure().name == "SUCCESS"
        assert node.trigger_activate().name == "SUCCESS"
        wait_for(lambda: len(images) >= 3 and infos, 10, "images and camera_info")
        img = images[-1]
        assert (img.width, img.height, img.encoding, img.step) == (W, H, "mono8", W)
        gray = image_to_array(img)[..., 0]
        assert abs(float(gray.mean()) - 0.299 * 200) < 6  # red 200 -> luma ~60 (JPEG loss)
        assert list(infos[-1].k) == [40.0, 0, 24, 0, 40.0, 16, 0, 0, 1]
        # each frame's camera_info carries the frame's stamp; the two topics arrive
        # independently, so the latest of each may belong to different frames
        wait_for(
            lambda: {_stamp(c) for c in infos} & {_stamp(m) for m in images},
            5,
            "a camera_info stamped like an image",
        )
        assert node.trigger_deactivate().name == "SUCCESS"
        time.sleep(1.0)  # frames published before the transition may still be in flight
        count = len(images)
        time.sleep(0.4)
        assert len(images) == count  # inactive: silent
        assert node.trigger_cleanup().name == "SUCCESS"
    finally:
        session.close()


@pytest.mark.ros
def test_bad_parameters_fail_configure(tmp_path: Path) -> None:
    session = RosSession(fresh_domain_id())
    try:
        node = session.add(
            CameraNode(
                context=session.context, parameter_overrides=[Parameter("encoding", value="yuv422")]
            )
        )
        assert node.trigger_configure().name == "FAILURE"
        node2 = session.add(
            CameraNode(
                context=session.context,
                parameter_overrides=[Parameter("source", value=f"file:{tmp_path}/missing.mp4")],
            )
        )
        assert node2.trigger_configure().name == "SUCCESS"
        assert node2.trigger_activate().name == "FAILURE"
    finally:
        session.close()


@pytest.mark.ros
def test_rgb8_synthetic_roundtrip() -> None:
    session = RosSession(fresh_domain_id())
    try:
        session.add(
            CameraNode(
                namespace="/cam_rgb",
                context=session.context,
                parameter_overrides=[
                    Parameter("source", value="synthetic"),
                    Parameter("width", value=W),
                    Parameter("height", value=H),
                    Parameter("autostart", value=True),
                ],
            )
        )
        probe = session.node("probe", "/cam_rgb")
        images: list = []
        probe.create_subscription(Image, "image_raw", images.append, sensor_qos())
        wait_for(lambda: len(images) >= 2, 10, "images")
        rgb = image_to_rgb8(images[-1])
        assert rgb.shape == (H, W, 3)
        counter = int(np.frombuffer(rgb[0, :4, 0].tobytes(), np.uint32)[0])
        assert counter >= 2
        assert rgb[5].max() == 255  # the moving white bar
    finally:
        session.close()


@pytest.mark.hardware
def test_v4l2_device_delivers_frames() -> None:
    """Needs a USB camera at /dev/video0 (deselected by default)."""
    src = FrameSource("v4l2:0", 640, 480, loop=False)
    try:
        frame = src.read()
        assert frame is not None
        assert frame.ndim == 3
        assert frame.shape[2] == 3
    finally:
        src.release()
