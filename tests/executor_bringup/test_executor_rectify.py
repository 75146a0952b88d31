"""executor_node with ``rectify``: the models see the undistorted frame, never the raw one.

A synthetic camera with strong barrel distortion (k1 = -0.3) images five dots whose ideal
(undistorted) pixel positions we choose; the raw frame has them where the lens puts them.
The video model is wrapped by a recording test double, so we look at exactly what reached
it: the dots must be back at their ideal positions (sub-pixel), while in the raw frame the
corner dots are ~4 px off.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from executor_interfaces.action import ExecuteTask
from rclpy.parameter import Parameter
from ros_helpers import RosSession, SafeActionClient, fresh_domain_id, result_of, wait_for
from sensor_msgs.msg import Image, JointState

from calibration.camera_info_io import CameraInfoData, save_camera_info
from executor_bringup.executor_node import ExecutorNode
from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.qos import sensor_qos

pytestmark = pytest.mark.ros
NS = "/rectify_test"
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
WIDTH_PX, HEIGHT_PX = 160, 120
K = np.array([[120.0, 0.0, 80.0], [0.0, 120.0, 60.0], [0.0, 0.0, 1.0]])
D = np.array([-0.3, 0.09, 0.0, 0.0, 0.0])
IDEAL_PX = np.array([[30.0, 25.0], [130.0, 25.0], [80.0, 60.0], [30.0, 95.0], [130.0, 95.0]])
BLOB_SIGMA_PX = 1.5


def _camera() -> CameraInfoData:
    return CameraInfoData(
        image_width_px=WIDTH_PX,
        image_height_px=HEIGHT_PX,
        camera_name="synthetic_barrel",
        camera_matrix=K,
        distortion_model="plumb_bob",
        distortion_coefficients=D,
        rectification_matrix=np.eye(3),
        projection_matrix=np.hstack([K, np.zeros((3, 1))]),  # rectified intrinsics = K
    )


def _distorted_dots() -> np.ndarray:
    """(H, W, 3) uint8: Gaussian dots where the distorted lens images the ideal points."""
    normalized = (IDEAL_PX - K[:2, 2]) / np.diag(K)[:2]
    rays = np.hstack([normalized, np.ones((len(normalized), 1))])
    raw_px, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), K, D)
    ys, xs = np.mgrid[0:HEIGHT_PX, 0:WIDTH_PX].astype(np.float64)
    image = np.zeros((HEIGHT_PX, WIDTH_PX))
    for u, v in raw_px.reshape(-1, 2):
        image += np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * BLOB_SIGMA_PX**2))
    grey = np.clip(255 * image, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _centroid(image: np.ndarray, center_px: np.ndarray, radius_px: int = 8) -> np.ndarray:
    """Intensity-weighted (u, v) of the first channel in a window around ``center_px``."""
    u0, v0 = np.round(center_px).astype(int)
    window = image[v0 - radius_px : v0 + radius_px + 1, u0 - radius_px : u0 + radius_px + 1, 0]
    weights = window.astype(np.float64)
    ys, xs = np.mgrid[-radius_px : radius_px + 1, -radius_px : radius_px + 1]
    offset = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()
    return np.array([u0, v0]) + offset


class RecordingVideoModel:
    """Test double around the node's video model: keeps every frame it was given."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.frames: list[np.ndarray] = []

    def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        self.frames.append(image_rgb.copy())
        return self.inner(image_rgb, prompt, seed)


@pytest.fixture
def camera_info_path(tmp_path: Path) -> Path:
    return save_camera_info(_camera(), tmp_path / "barrel.yaml")


def test_models_see_the_rectified_frame(tmp_path: Path, camera_info_path: Path) -> None:
    raw = _distorted_dots()
    session = RosSession(fresh_domain_id())
    try:
        node = session.add(
            ExecutorNode(
                namespace=NS,
                context=session.context,
                parameter_overrides=[
                    Parameter("output_mode", value="topic"),
                    Parameter("camera_info_path", value=str(camera_info_path)),
                    Parameter("rectify", value=True),
                    Parameter("settle_timeout_s", value=0.1),
                    Parameter("max_image_age_s", value=30.0),
                    Parameter("video_dir", value=str(tmp_path / "videos")),
                ],
            )
        )
        recorder = RecordingVideoModel(node.runner.video_model)
        node.runner.video_model = recorder
        probe = session.node("probe", NS)
        image_pub = probe.create_publisher(Image, "image_raw", sensor_qos())
        js_pub = probe.create_publisher(JointState, "joint_states", sensor_qos())
        client = SafeActionClient(probe, ExecuteTask, "execute_task")
        assert client.wait_for_server(timeout_sec=20)
        wait_for(lambda: probe.count_subscribers("image_raw") == 1, 10, "image subscription")
        msg = fill_image_msg(Image(), raw, "rgb8")
        msg.header.stamp = node.get_clock().now().to_msg()
        image_pub.publish(msg)
        js_pub.publish(JointState(name=NAMES, position=[0.0] * 6))
        wait_for(lambda: node.sensors.image is not None, 5, "the image")
        # The callback keeps the raw frame; rectification happens in the worker.
        assert np.array_equal(node.sensors.image, raw)
        handle = result_of(client.send_goal_async(ExecuteTask.Goal(task_prompt="look")), 10)
        result_of(handle.get_result_async(), 30)
        assert len(recorder.frames) == 1
        seen = recorder.frames[0]
        assert seen.shape == raw.shape
        for ideal in IDEAL_PX:
            raw_err = np.linalg.norm(_centroid(raw, ideal) - ideal)
            seen_err = np.linalg.norm(_centroid(seen, ideal) - ideal)
            if not np.allclose(ideal, K[:2, 2]):  # the centre dot does not move
                assert raw_err > 2.0, (ideal, raw_err)
            assert seen_err < 0.5, (ideal, seen_err)
    finally:
        session.close()


def test_wrong_frame_size_aborts_the_goal_naming_both_sizes(
    tmp_path: Path, camera_info_path: Path
) -> None:
    session = RosSession(fresh_domain_id())
    try:
        node = session.add(
            ExecutorNode(
                namespace=NS,
                context=session.context,
                parameter_overrides=[
                    Parameter("output_mode", value="topic"),
                    Parameter("camera_info_path", value=str(camera_info_path)),
                    Parameter("rectify", value=True),
                    Parameter("max_image_age_s", value=30.0),
                    Parameter("video_dir", value=str(tmp_path / "videos")),
                ],
            )
        )
        probe = session.node("probe", NS)
        image_pub = probe.create_publisher(Image, "image_raw", sensor_qos())
        client = SafeActionClient(probe, ExecuteTask, "execute_task")
        assert client.wait_for_server(timeout_sec=20)
        wait_for(lambda: probe.count_subscribers("image_raw") == 1, 10, "image subscription")
        msg = fill_image_msg(Image(), np.zeros((48, 64, 3), np.uint8), "rgb8")
        msg.header.stamp = node.get_clock().now().to_msg()
        image_pub.publish(msg)
        wait_for(lambda: node.sensors.image is not None, 5, "the image")
        handle = result_of(client.send_goal_async(ExecuteTask.Goal(task_prompt="look")), 10)
        res = result_of(handle.get_result_async(), 30)
        assert res.status == GoalStatus.STATUS_ABORTED
        assert "cannot rectify image_raw: image is 64x48" in res.result.message
        assert "calibrated at 160x120" in res.result.message
    finally:
        session.close()


def test_rectify_without_camera_info_is_refused() -> None:
    session = RosSession(fresh_domain_id())
    try:
        with pytest.raises(ValueError, match="rectify is true but camera_info_path is empty"):
            ExecutorNode(
                context=session.context, parameter_overrides=[Parameter("rectify", value=True)]
            )
    finally:
        session.close()
