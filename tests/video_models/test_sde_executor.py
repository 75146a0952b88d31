"""The GRPO sampler: exact per-step log-probs, and the ODE as its noise-free limit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from video_models.sde_executor import sample_with_log_probs, sde_step, step_log_prob

PROMPTS = ["put the red cube in the bowl", "push the blue cube onto the cyan mat"]


def test_sde_step_log_prob_is_the_gaussian_density():
    torch.manual_seed(0)
    x, v = torch.randn(2, 3, 2, 4, 4), torch.randn(2, 3, 2, 4, 4)
    nxt, lp = sde_step(v, x, 0.8, 0.6, noise_level=0.5, generator=torch.Generator().manual_seed(1))
    s = 0.8
    std_t = 0.5 * math.sqrt(s / (1 - s))
    dt = -0.2
    mean = x * (1 + std_t**2 / (2 * s) * dt) + v * (1 + std_t**2 * (1 - s) / (2 * s)) * dt
    std = std_t * math.sqrt(-dt)
    ref = torch.distributions.Normal(mean, std).log_prob(nxt).flatten(1).mean(1)
    torch.testing.assert_close(lp, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"sigma_next 0\.9"):
        sde_step(v, x, 0.8, 0.9, 0.5)


def test_noise_free_sde_equals_the_pipeline_ode(debug_pipe, camera_image):
    rollout = sample_with_log_probs(
        debug_pipe, [camera_image] * 2, PROMPTS, [3, 4], noise_level=0.0
    )
    ode = debug_pipe([camera_image] * 2, PROMPTS, seed=[3, 4]).frames
    np.testing.assert_allclose(rollout.frames.astype(int), ode.astype(int), atol=1)


def test_recomputed_log_probs_match_and_carry_gradients(debug_pipe, camera_image):
    rollout = sample_with_log_probs(
        debug_pipe, [camera_image] * 2, PROMPTS, [0, 1], noise_level=0.7
    )
    assert rollout.log_probs.shape == (2, debug_pipe.config.num_inference_steps)
    assert len(rollout.latents) == debug_pipe.config.num_inference_steps + 1
    for k in range(debug_pipe.config.num_inference_steps):
        lp = step_log_prob(debug_pipe, rollout, k, noise_level=0.7)
        torch.testing.assert_close(lp.detach(), rollout.log_probs[:, k], rtol=1e-4, atol=1e-4)
    lp.sum().backward()
    grads = [p.grad for p in debug_pipe.transformer.parameters() if p.grad is not None]
    assert grads
    assert any(g.abs().sum() > 0 for g in grads)
