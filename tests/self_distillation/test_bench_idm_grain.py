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
from executor_sim import EnvConfig
from executor_sim.env import make_env
from inverse_dynamics.dataset_idm import EpisodeArrays
from video_models.configuration_executor import MODEL_PRESETS
from video_models.modeling_executor import build_pipeline


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


# ------------------------------------------------ what a pixel-space output head can draw
def test_patches_round_trip_in_the_heads_order(bench: ModuleType) -> None:
    frames = torch.randint(0, 256, (4, 3, 8, 16), dtype=torch.uint8)
    patches = bench.to_patches(frames, (2, 4, 8))
    assert patches.shape == (2 * 2 * 2, 2 * 4 * 8 * 3)
    # the last axis is RGB, then w, h, t: a token's first 3 values are one pixel's channels
    assert torch.equal(patches[0, :3], frames[0, :, 0, 0].double())
    assert torch.equal(bench.from_patches(patches, (2, 4, 8), frames.shape), frames.double())
    with pytest.raises(ValueError, match=r"do not tile into \(3, 4, 8\)"):
        bench.to_patches(frames, (3, 4, 8))


def test_strided_groups_patch_each_offset_and_pad_with_the_last_frame(bench: ModuleType) -> None:
    assert bench.strided_groups(10, 4, 2) == [[0, 4, 8, 8], [1, 5, 9, 9], [2, 6], [3, 7]]
    assert bench.strided_groups(3, 4, 1) == [[0], [1], [2]]


def test_a_transformers_output_lies_in_its_head_span(bench: ModuleType, tmp_path: Path) -> None:
    """The span is read from ``proj_out`` in the order the transformer unpacks it: the model's
    own x0 prediction projects onto itself, a random clip does not."""
    pipe = build_pipeline(MODEL_PRESETS["debug"], seed=0)
    pipe.save_pretrained(tmp_path / "pipe")
    span = bench.head_span(tmp_path / "pipe")
    cfg = MODEL_PRESETS["debug"]
    assert span.patch == cfg.transformer.patch_size
    width = cfg.transformer.num_attention_heads * cfg.transformer.attention_head_dim
    assert span.rank == width  # 16 of the 2x4x4x3 = 96 values of a patch
    gen = torch.Generator().manual_seed(0)
    t, s = cfg.num_frames, cfg.size_px
    with torch.no_grad():
        out = pipe.transformer(
            hidden_states=torch.randn(1, cfg.pixel_channels_in, t, s, s, generator=gen),
            timestep=torch.tensor([500]),
            encoder_hidden_states=torch.randn(1, 5, cfg.text_dim, generator=gen),
            return_dict=False,
        )[0]
    drawn = bench.to_patches(out[0].permute(1, 0, 2, 3), span.patch)
    assert torch.allclose(span.project(drawn), drawn, atol=1e-4)
    noise = torch.randn(drawn.shape, generator=gen, dtype=torch.float64)
    assert (span.project(noise) - noise).abs().max() > 0.5


def _varied_episode(index: int, frames: int = 9) -> EpisodeArrays:
    gen = torch.Generator().manual_seed(index)
    video = torch.randint(0, 256, (frames, 3, 16, 16), generator=gen, dtype=torch.uint8)
    return EpisodeArrays(index, video, torch.zeros(frames, 6), torch.zeros(frames, 6))


def test_a_full_rank_span_keeps_the_frames_and_a_low_rank_one_does_not(bench: ModuleType) -> None:
    episodes = [_varied_episode(i) for i in range(4)]
    full = bench.pca_span(episodes, (2, 4, 4), 96, stride=4)
    kept = bench.in_span(episodes[0], full, stride=4)
    assert torch.equal(kept.frames, episodes[0].frames)
    assert bench.goal_psnr_db([kept], [episodes[0]]) == float("inf")
    low = bench.pca_span(episodes, (2, 4, 4), 4, stride=4)
    moved = bench.in_span(episodes[0], low, stride=4)
    assert moved.frames.dtype == torch.uint8
    assert not torch.equal(moved.frames, episodes[0].frames)
    assert 0.0 < bench.goal_psnr_db([moved], [episodes[0]]) < 30.0
    assert torch.equal(moved.state_rad, episodes[0].state_rad)


def test_degraded_goals_are_blurred_then_noised(bench: ModuleType) -> None:
    frames = torch.zeros(3, 3, 16, 16, dtype=torch.uint8)
    frames[:, :, :, 8:] = 255
    episode = EpisodeArrays(5, frames, torch.zeros(3, 6), torch.zeros(3, 6))
    assert bench.degraded(episode, 0.0, 0.0, seed=0) is episode
    blurred = bench.degraded(episode, 1.0, 0.0, seed=0)
    edge = blurred.frames[:, :, :, 7:9].float()
    assert (edge > 0).all()
    assert (edge < 255).all()
    assert torch.equal(blurred.frames[:, :, :, :4], frames[:, :, :, :4])  # far from the edge
    noisy = bench.degraded(episode, 1.0, 8.0, seed=0)
    assert not torch.equal(noisy.frames, blurred.frames)
    assert torch.equal(noisy.frames, bench.degraded(episode, 1.0, 8.0, seed=0).frames)


def test_arm_offset_re_renders_only_the_goal_frames(bench: ModuleType) -> None:
    env = make_env(EnvConfig(image_size_px=32))
    try:
        env.reset(5)
        task = env.task
        record = {"episode_index": 3, "seed": 5, "prompt": task.prompt, "task_family": task.family}
        home = torch.from_numpy(env.home_rad.astype(np.float32))
        episode = EpisodeArrays(
            3, torch.zeros(9, 3, 32, 32, dtype=torch.uint8), home.repeat(9, 1), home.repeat(9, 1)
        )
        args = {"env": env, "records": {3: record}, "stride": 4, "seed": 0}
        still = bench.arm_offset(episode, noise_rad=0.0, **args)
        moved = bench.arm_offset(episode, noise_rad=0.05, **args)
        again = bench.arm_offset(episode, noise_rad=0.05, **args)
    finally:
        env.close()
    goals = [4, 8]
    others = [i for i in range(9) if i not in goals]
    # Only the goal frames a stride apart are drawn; the rest stay as recorded (zeros here).
    assert still.frames[goals].float().mean() > 20
    assert not still.frames[others].any()
    assert not moved.frames[others].any()
    assert not torch.equal(moved.frames[goals], still.frames[goals])  # the arm is moved
    assert torch.equal(moved.frames, again.frames)  # seeded per episode


def test_pca_ceilings_and_degradations_parse(bench: ModuleType) -> None:
    assert bench.parse_ceilings("2x8x8:160, 4x8x8:64") == (((2, 8, 8), 160), ((4, 8, 8), 64))
    assert bench.parse_degrade("0.7:0, 1.2:10") == ((0.7, 0.0), (1.2, 10.0))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--noise_std", "2,4"], "must include 0 (the clean goals), got (2.0, 4.0)"),
        (["--noise_std", "0,x"], "--noise_std must be comma-separated numbers, got '0,x'"),
        (["--grainy", "."], "grainy and reference go together"),
        (["--pca_ceilings", "2x8:160"], "items are TxHxW:RANK (e.g. 2x8x8:160), got '2x8:160'"),
        (["--pca_ceilings", "2x8x8"], "items are TxHxW:RANK (e.g. 2x8x8:160), got '2x8x8'"),
        (["--pca_ceilings", "2x8x8:400"], "rank 400 is not in [1, 384]"),
        (["--span_of", "nope"], "no such video pipeline folder: 'nope'"),
        (["--degrade", "0.7"], "--degrade items are BLUR_PX:NOISE_STD (e.g. 0.7:10), got '0.7'"),
        (["--degrade", "9:0"], "got (9.0, 0.0)"),
        (["--fit_to", "nope.npz"], "no such re-generated clips file: 'nope.npz'"),
        (["--arm_offset_rad", "0,0.9"], "arm_offset_rad must be in [0, 0.5] rad, got (0.0, 0.9)"),
        (["--arm_offset_rad", "x"], "--arm_offset_rad must be comma-separated numbers, got 'x'"),
    ],
)
def test_bad_input_exits_2_naming_the_value(
    bench: ModuleType,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert bench.main(["--output", str(tmp_path / "g.json"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "g.json").exists()


def test_the_fit_finds_the_blur_and_the_noise_it_was_given(bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    true = np.zeros((2, 4, 16, 16, 3), dtype=np.uint8)
    true[..., 8:, :] = 200
    true[:, :, 4:6, 3:12] = 90  # a bar, so a blur shows on both axes
    drawn = np.stack([bench.blur(clip, 1.0) for clip in true]).round().astype(np.uint8)
    fit = bench.fit_degradation(true, drawn, seed=0)
    assert fit["blur_px_p10_p50_p90"] == [1.0, 1.0, 1.0]
    assert fit["frames"] == 2 * 3  # the first (conditioning) frame is not fitted
    assert fit["noise_std_at_median_blur"] == 0.0
    noisy = np.clip(drawn + rng.normal(0, 6, drawn.shape), 0, 255).round().astype(np.uint8)
    refit = bench.fit_degradation(true, noisy, seed=0)
    assert refit["energy_drawn"] > fit["energy_drawn"]
    assert 3.0 <= refit["noise_std_at_median_blur"] <= 9.0
