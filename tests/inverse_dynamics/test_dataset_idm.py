from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from idm_synthetic import render_state, synthetic_episode

from inverse_dynamics.configuration_idm import IDMConfig
from inverse_dynamics.dataset_idm import TransitionSampler, load_episodes, split_episodes


def test_load_episodes_decodes_frames_and_joints(synthetic_dataset: Path) -> None:
    cfg = IDMConfig()
    episodes = load_episodes(synthetic_dataset, cfg, [1, 3])
    assert [e.episode_index for e in episodes] == [1, 3]
    rng = np.random.default_rng(0)
    expected = [synthetic_episode(rng, 24) for _ in range(4)]
    for e in episodes:
        states, actions = expected[e.episode_index]
        assert e.frames.shape == (24, 3, 64, 64)
        assert e.frames.dtype == torch.uint8
        np.testing.assert_allclose(e.state_rad.numpy(), states)
        np.testing.assert_allclose(e.action_rad.numpy(), actions)
        # Lossy video, but the frame is still the rendered state (mean error < 12 levels).
        rendered = render_state(states[5]).astype(float)
        decoded = e.frames[5].permute(1, 2, 0).numpy().astype(float)
        assert np.abs(decoded - rendered).mean() < 12


def test_load_episodes_resizes_to_the_model_resolution(synthetic_dataset: Path) -> None:
    cfg = IDMConfig(image_size_px=32, conv_channels=(8, 16))
    (episode,) = load_episodes(synthetic_dataset, cfg, [0])
    assert episode.frames.shape == (24, 3, 32, 32)


def test_missing_dataset_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no local LeRobotDataset"):
        load_episodes(tmp_path / "nothing", IDMConfig())


def test_sampler_aligns_frames_state_and_actions(synthetic_dataset: Path) -> None:
    cfg = IDMConfig(num_input_frames=3, frame_stride=4)
    episodes = load_episodes(synthetic_dataset, cfg, [0, 1])
    sampler = TransitionSampler(episodes, cfg)
    assert len(sampler) == 2 * (24 - 4)
    # Sample 22 = episode 1, step t = 2: frames at max(2-4, 0)=0, 2, 6 of episode 1.
    frames, state, actions = sampler.gather(torch.tensor([22]))
    ep1 = episodes[1]
    assert frames.shape == (1, 3, 3, 64, 64)
    torch.testing.assert_close(frames[0], ep1.frames[[0, 2, 6]])
    torch.testing.assert_close(state[0], ep1.state_rad[2])
    torch.testing.assert_close(actions[0], ep1.action_rad[2:6])
    stats = sampler.statistics()
    assert stats["action_std_rad"].shape == (6,)
    assert (stats["action_std_rad"] > 0.1).all()


def test_split_is_by_episode_deterministic_and_disjoint() -> None:
    train, val = split_episodes(list(range(20)), 0.1, seed=0)
    assert len(val) == 2
    assert sorted(train + val) == list(range(20))
    assert split_episodes(list(range(20)), 0.1, seed=0) == (train, val)
    assert split_episodes(list(range(3)), 0.1, seed=0)[1] != []
    with pytest.raises(ValueError, match=r"1\.5"):
        split_episodes([0, 1], 1.5, seed=0)
