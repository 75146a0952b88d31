"""``benchmarks/bench_idm_grain.py``: the goal-frame perturbations it replays the IDM with
(the replay itself is ``evaluate_idm.replay_episode``, tested with the IDM), and bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from executor_core.frame_stats import high_freq_energy
from inverse_dynamics.dataset_idm import EpisodeArrays


@pytest.fixture
def bench(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("benchmarks/bench_idm_grain.py")


def _episode(index: int = 3) -> EpisodeArrays:
    ramp = torch.linspace(0, 250, 16).round().to(torch.uint8)
    frames = ramp[None, None, None, :].expand(5, 3, 16, 16).clone()
    return EpisodeArrays(index, frames, torch.zeros(5, 6), torch.zeros(5, 6))


def test_iid_grain_is_seeded_per_episode_and_stays_in_range(bench: ModuleType) -> None:
    episode = _episode()
    assert bench.iid_grain(episode, 0.0, seed=0) is episode
    a, b = bench.iid_grain(episode, 8.0, seed=0), bench.iid_grain(episode, 8.0, seed=0)
    assert torch.equal(a.frames, b.frames)
    assert not torch.equal(a.frames, bench.iid_grain(_episode(4), 8.0, seed=0).frames)
    assert a.frames.dtype == torch.uint8
    assert torch.equal(a.state_rad, episode.state_rad)
    clean = bench.frames_energy(episode)
    assert bench.frames_energy(a) > clean + 5.0


def test_transplanted_grain_adds_the_scaled_residuals(bench: ModuleType) -> None:
    episode = _episode()
    residuals = np.full((2, 3, 16, 16), 2.0, dtype=np.float32)
    residuals[1] = -2.0
    moved = bench.transplanted_grain(episode, residuals, scale=2.0, seed=0)
    delta = moved.frames.float() - episode.frames.float()
    # every frame moved by +4 or -4 (where the clamp to 0-255 allows)
    per_frame = delta[:, :, :, 4:12].reshape(5, -1)
    assert all(set(row.unique().tolist()) <= {4.0, -4.0} for row in per_frame)


def test_high_pass_of_a_flat_image_is_zero_and_of_a_dot_is_not(bench: ModuleType) -> None:
    flat = np.full((1, 9, 9, 3), 100, dtype=np.uint8)
    assert np.abs(bench.high_pass(flat)).max() < 1e-3
    dot = flat.copy()
    dot[0, 4, 4] = 200
    assert bench.high_pass(dot)[0, 4, 4, 0] > 50
    assert high_freq_energy(dot) > high_freq_energy(flat)


def test_bad_input_exits_2(
    bench: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = str(tmp_path / "g.json")
    assert bench.main(["--output", out, "--noise_std", "2,4"]) == 2
    assert "must include 0 (the clean goals), got (2.0, 4.0)" in capsys.readouterr().err
    assert bench.main(["--output", out, "--noise_std", "0,x"]) == 2
    assert "--noise_std must be comma-separated numbers, got '0,x'" in capsys.readouterr().err
    assert bench.main(["--output", out, "--grainy", str(tmp_path)]) == 2
    assert "grainy and reference go together" in capsys.readouterr().err
    assert not (tmp_path / "g.json").exists()
