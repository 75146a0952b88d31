"""Stochastic sampling with per-step log-probabilities, for GRPO on the video model.

The probability-flow ODE that ``ExecutorVideoPipeline.__call__`` integrates has an SDE with
the same marginals. With ``x_sigma = sigma * noise + (1 - sigma) * x_0`` and the predicted
velocity ``v = noise - x_0``, the score is ``-(x + (1 - sigma) v) / sigma``; adding
``g(sigma)^2 / 2`` times it to the drift and ``g(sigma) dW`` noise gives the Euler-Maruyama
step below, with ``g(sigma) = noise_level * sqrt(sigma / (1 - sigma))`` (noise that fades as
the video gets clean). Each step is Gaussian, so its log-probability is exact: this is what
a policy-gradient method (GRPO) needs to compare the current and the sampling policy.

Usage (GRPO): ``rollout = sample_with_log_probs(pipe, images, prompts, seeds)`` keeps the
latents of every step; later ``step_log_prob(pipe, rollout, k, ...)`` recomputes the
log-probability of step ``k`` under the current weights (with gradients).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from video_models.pipeline_executor import ExecutorVideoPipeline
from video_models.processing_executor import images_to_tensor, tensor_to_clips

logger = logging.getLogger(__name__)


def sde_step(
    velocity: torch.Tensor,
    sample: torch.Tensor,
    sigma: float,
    sigma_next: float,
    noise_level: float,
    generator: torch.Generator | None = None,
    prev_sample: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Euler-Maruyama step sigma -> sigma_next (< sigma).

    Returns ``(prev_sample, log_prob)``: the next sample (drawn, or the given
    ``prev_sample``) and its Gaussian log-density per video, averaged over elements, (B,).
    """
    if not sigma_next < sigma:
        raise ValueError(f"sigma_next {sigma_next!r} must be < sigma {sigma!r}")
    dt = sigma_next - sigma  # negative
    # sigma = 1 makes sqrt(sigma / (1 - sigma)) infinite; the first step uses a capped value.
    sigma_c = min(sigma, 0.999)
    std_t = noise_level * math.sqrt(sigma_c / (1.0 - sigma_c))
    x, v = sample.float(), velocity.float()
    mean = (
        x * (1 + std_t**2 / (2 * sigma_c) * dt)
        + v * (1 + std_t**2 * (1 - sigma_c) / (2 * sigma_c)) * dt
    )
    std = std_t * math.sqrt(-dt)
    if prev_sample is None:
        if std == 0.0:
            prev_sample = mean
        else:
            noise = torch.randn(mean.shape, generator=generator, dtype=torch.float32)
            prev_sample = mean + std * noise.to(mean.device)
    if std == 0.0:
        log_prob = torch.zeros(mean.shape[0], device=mean.device)
    else:
        diff = prev_sample.float() - mean
        elem = -(diff**2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)
        log_prob = elem.flatten(1).mean(dim=1)
    return prev_sample.to(sample.dtype), log_prob


@dataclass
class Rollout:
    """Everything needed to re-score a sampled video under other weights."""

    latents: list[torch.Tensor]  # num_steps + 1 tensors (B, C, T, h, w), noise first
    log_probs: torch.Tensor  # (B, num_steps) under the sampling weights
    sigmas: list[float]  # num_steps + 1, from 1 down to 0
    condition: torch.Tensor  # (B, scale + C, T, h, w)
    prompt_embeds: torch.Tensor  # (B, L, D)
    frames: np.ndarray  # (B, T, S, S, 3) uint8, the decoded video


@torch.no_grad()
def sample_with_log_probs(
    pipe: ExecutorVideoPipeline,
    images: list[np.ndarray],
    prompts: list[str],
    seeds: list[int],
    noise_level: float = 0.7,
    num_inference_steps: int | None = None,
    guidance_scale: float = 1.0,
) -> Rollout:
    """Sample videos with the SDE and keep per-step latents and log-probs."""
    cfg = pipe.config
    steps = num_inference_steps or cfg.num_inference_steps
    device = pipe._execution_device
    pipe.check_inputs(images, prompts, cfg.num_frames)
    if len(seeds) != len(images):
        raise ValueError(f"{len(seeds)} seeds for {len(images)} videos")
    embeds = pipe.encode_prompt(prompts, device)
    first = images_to_tensor(images, cfg.size_px).to(device)
    condition = pipe.prepare_condition(first.to(pipe.transformer.dtype), cfg.num_frames)
    pipe.scheduler.set_timesteps(steps, device=device)
    sigmas = [float(s) for s in pipe.scheduler.sigmas]
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    x = pipe.prepare_latents(
        pipe.latent_shape(len(images), cfg.num_frames, cfg.size_px), generators, device
    )
    # A single generator for the step noise, seeded from the first video's seed.
    step_gen = torch.Generator("cpu").manual_seed(int(seeds[0]) + 7919)
    latents, log_probs = [x], []
    for k, t in enumerate(pipe.scheduler.timesteps):
        v = pipe.predict_velocity(x, condition, t, embeds, guidance_scale=guidance_scale)
        x, lp = sde_step(v, x, sigmas[k], sigmas[k + 1], noise_level, step_gen)
        latents.append(x)
        log_probs.append(lp)
    video = pipe.decode(x).float().clamp(-1, 1)
    video[:, :, 0] = first.float()
    return Rollout(
        latents=latents,
        log_probs=torch.stack(log_probs, dim=1),
        sigmas=sigmas,
        condition=condition,
        prompt_embeds=embeds,
        frames=tensor_to_clips(video),
    )


def step_log_prob(
    pipe: ExecutorVideoPipeline,
    rollout: Rollout,
    k: int,
    noise_level: float = 0.7,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """Log-prob (B,) of the rollout's step k under the pipeline's CURRENT weights (grads on)."""
    x = rollout.latents[k]
    t = torch.tensor(rollout.sigmas[k] * pipe.scheduler.config.num_train_timesteps, device=x.device)
    v = pipe.predict_velocity(
        x, rollout.condition, t, rollout.prompt_embeds, guidance_scale=guidance_scale
    )
    _, lp = sde_step(
        v,
        x,
        rollout.sigmas[k],
        rollout.sigmas[k + 1],
        noise_level,
        prev_sample=rollout.latents[k + 1],
    )
    return lp
