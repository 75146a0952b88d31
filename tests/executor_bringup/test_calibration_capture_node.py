"""The live-topic intrinsics capture: real DDS on an isolated domain, synthetic frames."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import RosSession, fresh_domain_id, wait_for
from sensor_msgs.msg import Image

from calibration.camera_info_io import load_camera_info
from calibration.intrinsics import IntrinsicsOptions
from calibration.intrinsics_cli import IntrinsicsCliConfig
from calibration.sample_selection import SelectionOptions
from calibration.synthetic import TargetRenderer, make_camera_info, random_board_poses
from calibration.targets import TargetSpec
from executor_bringup.calibration_capture_node import (
    CalibrationCaptureNode,
    CaptureConfig,
    image_msg_to_gray,
)
from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.qos import sensor_qos

pytestmark = pytest.mark.ros


def test_mono_and_colour_messages_decode_to_grey() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(image_msg_to_gray(fill_image_msg(Image(), gray, "mono8")), gray)
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0] = 255  # pure red: grey 76 (ITU-R 601), blue would give 29
    assert image_msg_to_gray(fill_image_msg(Image(), rgb, "rgb8"))[0, 0] == 76
    assert image_msg_to_gray(fill_image_msg(Image(), rgb, "bgr8"))[0, 0] == 29


def test_node_calibrates_from_image_raw(tmp_path: Path) -> None:
    camera = make_camera_info(320, 240, 260.0, (-0.2, 0.05, 0.0, 0.0, 0.0))
    target = TargetSpec("charuco", 7, 5, 0.03, 0.018)
    renderer = TargetRenderer(camera, target, supersample=2)
    rng = np.random.default_rng(3)
    poses = random_board_poses(camera, target, 8, rng, fill_range=(0.5, 0.85))
    frames = [renderer.render(p, noise_sigma=2.0, rng=rng) for p in poses]
    out = tmp_path / "live.yaml"
    cfg = CaptureConfig(
        intrinsics=IntrinsicsCliConfig(
            output=out,
            camera_name="live",
            target=target,
            options=IntrinsicsOptions(radial_coefficients=2),
            selection=SelectionOptions(min_samples=5, max_samples=6),
        ),
        topic="image_raw",
        detect_period_s=0.0,
    )
    session = RosSession(fresh_domain_id())
    try:
        node = session.add(CalibrationCaptureNode(cfg, context=session.context))
        publisher = session.node("fake_camera").create_publisher(Image, "image_raw", sensor_qos())
        wait_for(lambda: publisher.get_subscription_count() > 0, 10.0, "the capture node")
        for frame in frames:
            for _ in range(4):  # held still for a moment
                msg = fill_image_msg(Image(), frame, "mono8")
                publisher.publish(msg)
                time.sleep(0.08)
            if node.done:
                break
        wait_for(lambda: node.done, 10.0, "calibration to finish")
    finally:
        session.close()
    assert node.error is None
    info = load_camera_info(out)
    assert info.camera_name == "live"
    assert abs(info.fx_px / 260.0 - 1) < 0.01
    assert 5 <= len(node.result.image_names) <= 6
