"""imagine_to_act: composition with tiny random test doubles, chaining, video writing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from executor_core.imagine_to_act import (
    PHASE_CONVERTING,
    PHASE_IMAGINING,
    TinyRandomInverseDynamics,
    TinyRandomVideoModel,
    chain_chunks,
    imagine_to_act,
    save_video_mp4,
)
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.safety import check_joint_trajectory
from executor_core.types import ActionChunk

torch.set_num_threads(1)
NAMES = ("a", "b")


def test_chain_chunks_times_and_values() -> None:
    c1 = ActionChunk(np.array([[0.1, 0.2], [0.3, 0.4]], np.float32), 10.0, NAMES)
    c2 = ActionChunk(np.array([[0.5, 0.6]], np.float32), 10.0, NAMES)
    traj = chain_chunks([c1, c2], NAMES)
    np.testing.assert_allclose(traj.time_from_start_s, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(traj.positions_rad[:, 1], [0.2, 0.4, 0.6], rtol=1e-6)
    with pytest.raises(ValueError, match=r"disagree on control_rate_hz: \[5.0, 10.0\]"):
        chain_chunks([c1, ActionChunk(c2.joint_positions_rad, 5.0, NAMES)], NAMES)
    with pytest.raises(ValueError, match="chunk 1 joint names"):
        chain_chunks([c1, ActionChunk(c2.joint_positions_rad, 10.0, ("a", "c"))], NAMES)
    with pytest.raises(ValueError, match="no action chunks"):
        chain_chunks([], NAMES)


def test_imagine_to_act_with_tiny_models_is_safe_and_deterministic() -> None:
    robot = RobotDescription.from_yaml(default_robot_path())
    torch.manual_seed(0)
    video_model = TinyRandomVideoModel(size_px=16, num_frames=4)
    idm = TinyRandomInverseDynamics(robot.joint_names, robot.home_rad, chunk_size=3, size_px=8)
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    phases: list[str] = []
    q0 = np.full(6, 0.1)
    plan = imagine_to_act(
        image,
        "put the red cube in the bowl",
        video_model,
        idm,
        robot.joint_names,
        q0,
        seed=3,
        on_phase=phases.append,
    )
    assert phases == [PHASE_IMAGINING, PHASE_CONVERTING]
    assert plan.video.shape == (4, 16, 16, 3)
    assert plan.trajectory.positions_rad.shape == (9, 6)
    np.testing.assert_allclose(plan.trajectory.time_from_start_s[[0, -1]], [0.1, 0.9])
    assert np.all(np.abs(plan.trajectory.positions_rad[0] - q0) <= 0.02 + 1e-6)
    assert check_joint_trajectory(plan.trajectory, robot, q0).ok
    again = imagine_to_act(
        image, "put the red cube in the bowl", video_model, idm, robot.joint_names, q0, seed=3
    )
    np.testing.assert_array_equal(again.video, plan.video)
    other = imagine_to_act(
        image, "put the red cube in the bowl", video_model, idm, robot.joint_names, q0, seed=4
    )
    assert not np.array_equal(other.video, plan.video)


def test_bad_inputs_are_named() -> None:
    class OneFrame:
        def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
            return image_rgb[None]

    image = np.zeros((8, 8, 3), np.uint8)
    idm = TinyRandomInverseDynamics(NAMES, np.zeros(2), size_px=8)
    with pytest.raises(ValueError, match="prompt must not be empty, got '  '"):
        imagine_to_act(image, "  ", OneFrame(), idm, NAMES)
    with pytest.raises(ValueError, match="returned 1 frame"):
        imagine_to_act(image, "go", OneFrame(), idm, NAMES)


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
