import numpy as np
import pytest

from executor_core.frames import center_crop_resize, from_model_range, to_model_range
from executor_core.robot_description import JointSpec, RobotDescription, default_robot_path
from executor_core.types import ActionChunk, JointTrajectory, Observation

NAMES = ("a", "b")


def test_observation_rejects_bad_images():
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        Observation(image_rgb=np.zeros((4, 4), np.uint8), stamp_s=0.0)
    with pytest.raises(ValueError, match="float32"):
        Observation(image_rgb=np.zeros((4, 4, 3), np.float32), stamp_s=0.0)
    with pytest.raises(ValueError, match="1 joint_names for 2"):
        Observation(np.zeros((4, 4, 3), np.uint8), 0.0, np.zeros(2), ("a",))


def test_trajectory_validation():
    traj = JointTrajectory(NAMES, np.zeros((3, 2)), np.array([0.1, 0.2, 0.3]))
    assert traj.duration_s == pytest.approx(0.3)
    with pytest.raises(ValueError, match="strictly increasing"):
        JointTrajectory(NAMES, np.zeros((2, 2)), np.array([0.2, 0.2]))
    with pytest.raises(ValueError, match="duplicate"):
        JointTrajectory(("a", "a"), np.zeros((1, 2)), np.array([0.1]))
    with pytest.raises(ValueError, match="velocities_rad_s"):
        JointTrajectory(NAMES, np.zeros((1, 2)), np.array([0.1]), velocities_rad_s=np.zeros(2))


def test_action_chunk_shape():
    chunk = ActionChunk(np.zeros((4, 2), np.float32), 10.0, NAMES)
    assert chunk.horizon == 4
    with pytest.raises(ValueError, match=r"\(H, 2\)"):
        ActionChunk(np.zeros((4, 3), np.float32), 10.0, NAMES)


def test_center_crop_resize_keeps_the_centre():
    img = np.zeros((480, 640, 3), np.uint8)
    img[:, :80] = 255  # left band is cropped away by the centre square
    img[200:280, 280:360] = (10, 200, 30)  # a centred square survives
    out = center_crop_resize(img, 64)
    assert out.shape == (64, 64, 3)
    assert out[:, 0].max() == 0
    assert tuple(out[32, 32]) == (10, 200, 30)
    with pytest.raises(ValueError, match="size_px"):
        center_crop_resize(img, 0)


def test_model_range_round_trip():
    frames = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    assert np.array_equal(from_model_range(to_model_range(frames)), frames)
    assert to_model_range(frames).min() == -1.0


def test_shipped_robot_description():
    robot = RobotDescription.from_yaml(default_robot_path())
    assert robot.joint_names == (
        "shoulder_pan",
        "shoulder_lift",
        "elbow_flex",
        "wrist_flex",
        "wrist_roll",
        "gripper",
    )
    assert np.all(robot.lower_rad < robot.upper_rad)
    assert np.all((robot.home_rad >= robot.lower_rad) & (robot.home_rad <= robot.upper_rad))


def test_joint_spec_quotes_bad_values():
    with pytest.raises(ValueError, match=r"2\.0"):
        JointSpec(
            "j", lower_rad=2.0, upper_rad=1.0, max_velocity_rad_s=1, max_acceleration_rad_s2=1
        )
    with pytest.raises(ValueError, match="direction"):
        JointSpec("j", -1, 1, 1, 1, direction=2)
