from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from executor_core.chunks import chain_chunks
from executor_core.types import ActionChunk
from inverse_dynamics.configuration_idm import IDMConfig
from inverse_dynamics.modeling_idm import InverseDynamicsModel
from inverse_dynamics.processing_idm import (
    IDMProcessor,
    InverseDynamicsPolicy,
)

TINY = IDMConfig(image_size_px=32, conv_channels=(8, 16), hidden_dim=32)


@pytest.fixture
def policy(tmp_path: Path) -> InverseDynamicsPolicy:
    torch.manual_seed(0)
    InverseDynamicsModel(TINY).save_pretrained(tmp_path / "idm")
    return InverseDynamicsPolicy.from_pretrained(tmp_path / "idm")


def _video(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_preprocess_crops_resizes_and_scales() -> None:
    frames = np.zeros((2, 40, 60, 3), np.uint8)
    frames[:, :, 10:50] = 255  # the centre square (columns 10..49) is white
    x = IDMProcessor(TINY).preprocess_frames(frames)
    assert x.shape == (2, 3, 32, 32)
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, torch.ones_like(x))


def test_windows_repeat_the_first_frame_before_the_start() -> None:
    cfg = IDMConfig(image_size_px=32, conv_channels=(8, 16), num_input_frames=3)
    frames = torch.arange(4.0)[:, None, None, None].expand(4, 3, 2, 2)
    w = IDMProcessor(cfg).windows(frames)
    assert w.shape == (3, 3, 3, 2, 2)
    assert w[:, :, 0, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3]]


def test_predict_returns_one_chunk_per_pair(policy: InverseDynamicsPolicy) -> None:
    q0 = np.array([0.1, -0.2, 0.3, 0.0, 1.0, 0.5])
    for state in (q0, None):
        chunks = policy.predict(_video(5), state)
        assert len(chunks) == 4
        for chunk in chunks:
            assert isinstance(chunk, ActionChunk)
            assert chunk.joint_positions_rad.shape == (4, 6)
            assert chunk.joint_positions_rad.dtype == np.float32
            assert chunk.control_rate_hz == 10.0
            assert chunk.joint_names == TINY.joint_names
    # predict_chunk on the first pair equals predict's first chunk (same state).
    single = policy.predict_chunk(_video(5)[:2], q0)
    np.testing.assert_allclose(
        single.joint_positions_rad, policy.predict(_video(5), q0)[0].joint_positions_rad, atol=1e-5
    )


def test_trajectory_is_at_the_control_rate(policy: InverseDynamicsPolicy) -> None:
    chunks = policy.predict(_video(4), None)
    traj = policy.to_trajectory(chunks, start_delay_s=0.5)
    assert traj.positions_rad.shape == (12, 6)
    np.testing.assert_allclose(traj.time_from_start_s, 0.5 + np.arange(1, 13) / 10.0)
    np.testing.assert_allclose(traj.positions_rad[4:8], chunks[1].joint_positions_rad)
    assert traj.joint_names == TINY.joint_names


def test_trajectory_refuses_mixed_chunks() -> None:
    a = ActionChunk(np.zeros((4, 6), np.float32), 10.0, TINY.joint_names)
    b = ActionChunk(np.zeros((4, 6), np.float32), 20.0, TINY.joint_names)
    with pytest.raises(ValueError, match=r"chunk 1 .* 20.0 Hz"):
        chain_chunks([a, b], TINY.joint_names)
    with pytest.raises(ValueError, match="empty"):
        chain_chunks([], TINY.joint_names)


@pytest.mark.parametrize(
    ("frames", "state", "match"),
    [
        (_video(1), None, r"needs >= 2 frames .* got shape \(1, 48, 64, 3\)"),
        (_video(3, 16, 16), None, "16x16 px are smaller than the IDM resolution 32 px"),
        (_video(3).astype(np.float32), None, "uint8"),
        (_video(3)[..., :2], None, r"\(T, H, W, 3\)"),
        (_video(3), np.zeros(5), r"joint_positions_rad must be \(6,\)"),
        (_video(3), np.array([0, 0, np.nan, 0, 0, 0]), "finite"),
    ],
)
def test_bad_inputs_get_clear_errors(
    policy: InverseDynamicsPolicy, frames: np.ndarray, state: np.ndarray | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        policy.predict(frames, state)


def test_predict_chunk_needs_exactly_k_frames(policy: InverseDynamicsPolicy) -> None:
    with pytest.raises(ValueError, match=r"exactly 2 frames .* \(3, 48, 64, 3\)"):
        policy.predict_chunk(_video(3))
