"""The policy interface (imagine, open-loop plan, closed-loop chunks), chaining, the move home,
video writing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from executor_core.chunks import chain_chunks, concatenate_trajectories, return_home
from executor_core.frames import center_crop_resize
from executor_core.policy import (
    PHASE_IMAGINING,
    check_idm_mode,
    chunk_towards,
    goal_frames,
    imagine_video,
    trajectory_from_video,
)
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.safety import check_joint_trajectory
from executor_core.test_doubles import TinyRandomInverseDynamics, TinyRandomVideoModel
from executor_core.types import ActionChunk, JointTrajectory
from executor_core.video_io import save_video_mp4

torch.set_num_threads(1)
NAMES = ("a", "b")


def test_chain_chunks_times_and_values() -> None:
    c1 = ActionChunk(np.array([[0.1, 0.2], [0.3, 0.4]], np.float32), 10.0, NAMES)
    c2 = ActionChunk(np.array([[0.5, 0.6]], np.float32), 10.0, NAMES)
    traj = chain_chunks([c1, c2], NAMES)
    np.testing.assert_allclose(traj.time_from_start_s, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(traj.positions_rad[:, 1], [0.2, 0.4, 0.6], rtol=1e-6)
    with pytest.raises(ValueError, match=r"chunk 1 has joints .* at 5.0 Hz, expected"):
        chain_chunks([c1, ActionChunk(c2.joint_positions_rad, 5.0, NAMES)], NAMES)
    with pytest.raises(ValueError, match=r"chunk 1 has joints \('a', 'c'\)"):
        chain_chunks([c1, ActionChunk(c2.joint_positions_rad, 10.0, ("a", "c"))], NAMES)
    with pytest.raises(ValueError, match="no action chunks"):
        chain_chunks([], NAMES)


def test_open_loop_plan_with_tiny_models_is_safe_and_deterministic() -> None:
    robot = RobotDescription.from_yaml(default_robot_path())
    torch.manual_seed(0)
    video_model = TinyRandomVideoModel(size_px=16, num_frames=4)
    idm = TinyRandomInverseDynamics(robot.joint_names, robot.home_rad, chunk_size=3, size_px=8)
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    phases: list[str] = []
    q0 = np.full(6, 0.1)
    prompt = "put the red cube in the bowl"
    video = imagine_video(image, prompt, video_model, seed=3, on_phase=phases.append)
    trajectory = trajectory_from_video(video, idm, robot.joint_names, q0)
    assert phases == [PHASE_IMAGINING]
    assert video.shape == (4, 16, 16, 3)
    assert trajectory.positions_rad.shape == (9, 6)
    np.testing.assert_allclose(trajectory.time_from_start_s[[0, -1]], [0.1, 0.9])
    assert np.all(np.abs(trajectory.positions_rad[0] - q0) <= 0.02 + 1e-6)
    assert check_joint_trajectory(trajectory, robot, q0).ok
    np.testing.assert_array_equal(imagine_video(image, prompt, video_model, seed=3), video)
    assert not np.array_equal(imagine_video(image, prompt, video_model, seed=4), video)


def test_bad_inputs_are_named() -> None:
    class OneFrame:
        def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
            return image_rgb[None]

    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="prompt must not be empty, got '  '"):
        imagine_video(image, "  ", OneFrame())
    with pytest.raises(ValueError, match="returned 1 frame"):
        imagine_video(image, "go", OneFrame())
    video = np.zeros((3, 8, 8, 3), np.uint8)

    class TwoChunksShort(TinyRandomInverseDynamics):
        def predict(self, frames, joint_positions_rad):
            return super().predict(frames, joint_positions_rad)[:1]

    with pytest.raises(ValueError, match="IDM returned 1 chunks for 3 frames"):
        trajectory_from_video(video, TwoChunksShort(NAMES, np.zeros(2), size_px=8), NAMES)


def test_save_video_mp4_atomic_and_readable(tmp_path) -> None:
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = np.array([0, 120, 240], np.uint8)[:, None, None]
    out = save_video_mp4(frames, tmp_path / "v" / "imagined.mp4", fps=2.5)
    assert out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["imagined.mp4"]
    cap = cv2.VideoCapture(str(out))
    reds = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        reds.append(int(bgr[..., 2].mean()))
    assert len(reds) == 3
    assert reds == pytest.approx([0, 120, 240], abs=8)
    with pytest.raises(ValueError, match="fps must be > 0"):
        save_video_mp4(frames, tmp_path / "x.mp4", fps=0)


# -- closed loop: the pieces the executor node and the sim evaluation share


class RecordingIDM:
    """Wraps the tiny IDM and keeps every (frames, state) predict_chunk was given."""

    def __init__(self, idm: TinyRandomInverseDynamics) -> None:
        self.idm = idm
        self.calls: list[tuple[np.ndarray, np.ndarray | None]] = []

    def predict_chunk(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> ActionChunk:
        self.calls.append((frames.copy(), joint_positions_rad))
        return self.idm.predict_chunk(frames, joint_positions_rad)


def test_check_idm_mode_names_the_bad_value() -> None:
    assert check_idm_mode("closed_loop") == "closed_loop"
    assert check_idm_mode("open_loop") == "open_loop"
    with pytest.raises(ValueError, match=r"idm_mode must be one of .*got 'closed-loop'"):
        check_idm_mode("closed-loop")


def test_goal_frames_are_the_imagined_frames_after_the_first() -> None:
    video = np.arange(5)[:, None, None, None] * np.ones((5, 4, 4, 3), np.uint8)
    goals = goal_frames(video)
    assert goals.shape == (4, 4, 4, 3)
    assert [int(g[0, 0, 0]) for g in goals] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"T >= 2.*\(1, 4, 4, 3\)"):
        goal_frames(video[:1])


def test_chunk_towards_compares_the_camera_frame_with_the_goal() -> None:
    robot = RobotDescription.from_yaml(default_robot_path())
    torch.manual_seed(0)
    idm = RecordingIDM(TinyRandomInverseDynamics(robot.joint_names, robot.home_rad, size_px=8))
    camera = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    goal = np.full((16, 16, 3), 200, np.uint8)
    q = np.full(6, 0.1)
    traj = chunk_towards(idm, camera, goal, robot.joint_names, q)
    ((frames, state),) = idm.calls
    # the camera frame gets the video model's preprocessing: both frames at 16 px
    np.testing.assert_array_equal(frames[0], center_crop_resize(camera, 16))
    np.testing.assert_array_equal(frames[1], goal)
    np.testing.assert_array_equal(state, q)
    assert traj.positions_rad.shape == (4, 6)  # frame_stride rows
    np.testing.assert_allclose(traj.time_from_start_s, [0.1, 0.2, 0.3, 0.4])
    assert check_joint_trajectory(traj, robot, q).ok
    with pytest.raises(ValueError, match=r"square.*\(16, 12, 3\)"):
        chunk_towards(idm, camera, goal[:, :12], robot.joint_names, q)


def test_tiny_idm_predict_chunk_is_its_first_open_loop_chunk() -> None:
    torch.manual_seed(0)
    idm = TinyRandomInverseDynamics(NAMES, np.zeros(2), size_px=8)
    frames = np.random.default_rng(2).integers(0, 255, (2, 8, 8, 3), dtype=np.uint8)
    q = np.array([0.3, -0.2])
    np.testing.assert_array_equal(
        idm.predict_chunk(frames, q).joint_positions_rad,
        idm.predict(frames, q)[0].joint_positions_rad,
    )
    with pytest.raises(ValueError, match=r"\(2, H, W, 3\).*\(3, 8, 8, 3\)"):
        idm.predict_chunk(np.concatenate([frames, frames[:1]]), q)


def test_concatenate_trajectories_back_to_back() -> None:
    a = JointTrajectory(NAMES, np.zeros((2, 2)), np.array([0.1, 0.2]))
    b = JointTrajectory(NAMES, np.ones((2, 2)), np.array([0.3, 0.6]))  # a retimed chunk
    traj = concatenate_trajectories([a, b])
    np.testing.assert_allclose(traj.time_from_start_s, [0.1, 0.2, 0.5, 0.8])
    np.testing.assert_array_equal(traj.positions_rad[:, 0], [0, 0, 1, 1])
    assert traj.metadata["chunks"] == "2"
    with pytest.raises(ValueError, match="no trajectories"):
        concatenate_trajectories([])
    with pytest.raises(ValueError, match=r"trajectory 1 joint names \('a', 'c'\)"):
        concatenate_trajectories([a, JointTrajectory(("a", "c"), np.ones((1, 2)), np.ones(1))])


def test_imagine_video_validates_its_inputs() -> None:
    torch.manual_seed(0)
    phases: list[str] = []
    image = np.zeros((20, 30, 3), np.uint8)
    video = imagine_video(image, "go", TinyRandomVideoModel(8, 3), seed=1, on_phase=phases.append)
    assert video.shape == (3, 8, 8, 3)
    assert video.dtype == np.uint8
    assert phases == [PHASE_IMAGINING]
    with pytest.raises(ValueError, match="prompt must not be empty"):
        imagine_video(image, " ", TinyRandomVideoModel(8, 3))


def test_return_home_is_a_straight_move_at_the_speed_holding_the_gripper() -> None:

    names = ("a", "b", "gripper")
    q = np.array([0.5, -0.2, 0.8])
    home = np.array([0.0, 0.0, 0.0])
    move = return_home(names, q, home, speed_rad_s=1.0, rate_hz=10.0)
    assert move is not None
    assert move.positions_rad.shape == (5, 3)  # 0.5 rad at 0.1 rad per period
    np.testing.assert_allclose(move.time_from_start_s, [0.1, 0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(move.positions_rad[-1], [0.0, 0.0, 0.8])  # gripper kept
    np.testing.assert_allclose(move.positions_rad[0], [0.4, -0.16, 0.8])
    steps = np.abs(np.diff(np.vstack([q, move.positions_rad]), axis=0))
    assert steps.max() <= 0.1 + 1e-12
    # already home (gripper anywhere): nothing to do
    assert return_home(names, np.array([0.01, -0.02, 1.0]), home, 1.0, 10.0) is None


def test_return_home_names_bad_input() -> None:

    names = ("a", "gripper")
    with pytest.raises(ValueError, match=r"\(2,\)"):
        return_home(names, np.zeros(3), np.zeros(3), 1.0, 10.0)
    with pytest.raises(ValueError, match=r"-1\.0"):
        return_home(names, np.zeros(2), np.zeros(2), -1.0, 10.0)
    with pytest.raises(ValueError, match="'hand'"):
        return_home(names, np.zeros(2), np.zeros(2), 1.0, 10.0, keep_joints=("hand",))
