"""GRPO for flow-matching video models (Flow-GRPO / DanceGRPO), as pure torch functions.

Notation. The flow-matching convention of diffusers' ``FlowMatchEulerDiscreteScheduler``:
``x_s = (1 - s) * x0 + s * noise`` with ``s`` (sigma) going from 1 (noise) to 0 (data), and
the model predicts the velocity ``v = noise - x0``. The deterministic sampler is the Euler
ODE step ``x_{s'} = x_s + v * (s' - s)``.

GRPO needs a *stochastic* policy with a tractable likelihood, so sampling uses the reverse
SDE that has the same marginals as the ODE. From ``x0_hat = x - s v`` and
``noise_hat = x + (1 - s) v`` the score is ``-noise_hat / s``; with diffusion ``sigma_t``
the Euler-Maruyama step over ``dt = s' - s < 0`` is::

    mean = x + (v + sigma_t^2 / (2 s) * (x + (1 - s) v)) * dt
    x'   = mean + sigma_t * sqrt(-dt) * z,      z ~ N(0, I)
    sigma_t = eta * sqrt(s / (1 - s))

so each step is a Gaussian with a known mean and std, and its log-density is the policy
log-prob. ``eta = 0`` is the ODE (no exploration); Flow-GRPO uses ``eta`` around 0.7.

Log-probs are *averaged* over the latent elements (not summed) as in Flow-GRPO: a video
latent has 10^4..10^6 elements and a summed log-ratio would make every importance ratio
0 or infinity; the mean keeps the clip range meaningful at any resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def sde_sigma_t(sigma: torch.Tensor, eta: float, sigma_cap: float) -> torch.Tensor:
    """Diffusion coefficient ``eta * sqrt(s / (1 - min(s, sigma_cap)))``.

    At s = 1 (pure noise) the uncapped coefficient is infinite. The cap is the schedule's
    second sigma (as in Flow-GRPO): then ``eta^2 |dt| / (2 (1 - s_c)) <= eta^2 / 2`` on the
    first step, which keeps its Euler-Maruyama update stable. A cap near 1 (say 0.999)
    would make the first step multiply x by about -6 on a 10-step schedule.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    if not 0.0 < sigma_cap < 1.0:
        raise ValueError(f"sigma_cap must be in (0, 1), got {sigma_cap!r}")
    return eta * torch.sqrt(sigma / (1.0 - sigma.clamp(max=sigma_cap)))


def _per_sample(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a (B,) or scalar tensor over the trailing dims of ``like``."""
    x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if x.ndim == 0:
        return x
    return x.reshape(x.shape[0], *([1] * (like.ndim - 1)))


def sde_step_mean_std(
    x: torch.Tensor,  # (B, ...) latents at sigma
    velocity: torch.Tensor,  # (B, ...) model output at (x, sigma)
    sigma: torch.Tensor,  # scalar or (B,), current noise level s
    sigma_next: torch.Tensor,  # scalar or (B,), next noise level s' < s
    eta: float,
    sigma_cap: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, ...) and std (scalar or (B, 1, ...)) of the Gaussian SDE step s -> s'.
    ``sigma_cap``: see :func:`sde_sigma_t` (the schedule's ``sigmas[1]``)."""
    s = _per_sample(sigma, x)
    s_next = _per_sample(sigma_next, x)
    dt = s_next - s
    if torch.any(dt >= 0):
        raise ValueError(f"sigma must decrease, got sigma={sigma!r} -> {sigma_next!r}")
    sig_t = sde_sigma_t(s, eta, sigma_cap)
    # The score term divides by s; s is never 0 at the start of a step.
    mean = x + (velocity + sig_t**2 / (2.0 * s) * (x + (1.0 - s) * velocity)) * dt
    std = sig_t * torch.sqrt(-dt)
    return mean, std


def gaussian_log_prob(sample: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-sample log N(sample; mean, std^2 I), averaged over all non-batch elements. (B,)"""
    std = torch.as_tensor(std, dtype=sample.dtype, device=sample.device)
    if torch.any(std <= 0):
        raise ValueError("std must be > 0 for a log-prob (eta = 0 is deterministic)")
    elem = -((sample - mean) ** 2) / (2.0 * std**2) - torch.log(std) - LOG_SQRT_2PI
    return elem.reshape(elem.shape[0], -1).mean(dim=1)


def sde_step(
    x: torch.Tensor,
    velocity: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    eta: float,
    sigma_cap: float,
    generator: torch.Generator | None = None,
    sample: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One stochastic step: (next latents, their log-prob (B,), step mean).

    With ``sample`` given (the stored next latents of a rollout) nothing is drawn and the
    log-prob of that sample under the current velocity is returned: the GRPO ratio.
    """
    mean, std = sde_step_mean_std(x, velocity, sigma, sigma_next, eta, sigma_cap)
    if sample is None:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        sample = mean + std * noise
    return sample, gaussian_log_prob(sample, mean, std), mean


def group_advantages(
    rewards: torch.Tensor,  # (N,) one reward per sample
    group_ids: torch.Tensor,  # (N,) samples with the same id share a prompt/image
    eps: float = 1e-6,
) -> torch.Tensor:
    """GRPO advantages ``(r - mean_group) / (std_group + eps)`` with the population std.
    A group whose rewards are all equal carries no signal and gets advantage 0. (N,)"""
    if rewards.shape != group_ids.shape or rewards.ndim != 1:
        raise ValueError(
            f"rewards {tuple(rewards.shape)} and group_ids "
            f"{tuple(group_ids.shape)} must be the same 1-D shape"
        )
    rewards = rewards.float()
    adv = torch.zeros_like(rewards)
    for gid in torch.unique(group_ids):
        m = group_ids == gid
        r = rewards[m]
        adv[m] = (r - r.mean()) / (r.std(unbiased=False) + eps)
    return adv


def clipped_surrogate_loss(
    log_prob: torch.Tensor,  # (B,) under the current policy (with grad)
    old_log_prob: torch.Tensor,  # (B,) under the sampling policy
    advantages: torch.Tensor,  # (B,)
    clip_range: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO/GRPO clipped objective as a loss to minimise, plus diagnostics."""
    if clip_range <= 0:
        raise ValueError(f"clip_range must be > 0, got {clip_range!r}")
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    loss = torch.maximum(unclipped, clipped).mean()
    with torch.no_grad():
        frac = ((ratio - 1.0).abs() > clip_range).float().mean().item()
        approx_kl = 0.5 * ((log_prob - old_log_prob) ** 2).mean().item()
    return loss, {
        "clip_fraction": frac,
        "approx_kl_old": approx_kl,
        "ratio_mean": ratio.mean().item(),
    }


def gaussian_kl_same_std(
    mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean, std^2) || N(ref_mean, std^2)) per element = (mean - ref)^2 / (2 std^2),
    averaged over non-batch elements like the log-probs. Exact for two SDE steps from the
    same x and sigma, since they share the std. (B,)"""
    std = torch.as_tensor(std, dtype=mean.dtype, device=mean.device)
    kl = (mean - ref_mean) ** 2 / (2.0 * std**2)
    return kl.reshape(kl.shape[0], -1).mean(dim=1)


def schedule_sigma_cap(sigmas: torch.Tensor) -> float:
    """The SDE's sigma cap for a schedule: its second sigma (see :func:`sde_sigma_t`)."""
    if sigmas.ndim != 1 or sigmas.shape[0] < 2:
        raise ValueError(f"need a 1-D schedule of >= 2 sigmas, got shape {tuple(sigmas.shape)}")
    return float(sigmas[1])


@dataclass
class Rollout:
    """A stochastic sampling trajectory, everything GRPO needs to re-score it."""

    latents: torch.Tensor  # (T + 1, B, ...) x at each sigma, latents[0] = initial noise
    log_probs: torch.Tensor  # (T, B) log-prob of each step under the sampling policy
    sigmas: torch.Tensor  # (T + 1,) the schedule, decreasing, sigmas[-1] may be 0


VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, sigma) -> v


@torch.no_grad()
def sample_sde(
    velocity_fn: VelocityFn,
    x_init: torch.Tensor,  # (B, ...)
    sigmas: torch.Tensor,  # (T + 1,)
    eta: float,
    generator: torch.Generator | None = None,
    sde_steps: int | None = None,
) -> Rollout:
    """Sample with the SDE for the first ``sde_steps`` steps (all by default) and the ODE
    after, returning the trajectory. ODE steps have log-prob 0 and are never trained on.
    By default the last step (to sigma = 0) is an ODE step so that the decoded frames
    carry no injected noise."""
    num_steps = sigmas.shape[0] - 1
    sde_steps = num_steps - 1 if sde_steps is None else sde_steps
    if not 0 <= sde_steps <= num_steps:
        raise ValueError(f"sde_steps must be in [0, {num_steps}], got {sde_steps!r}")
    cap = schedule_sigma_cap(sigmas)
    xs = [x_init]
    log_probs = []
    x = x_init
    for i in range(num_steps):
        s, s_next = sigmas[i], sigmas[i + 1]
        v = velocity_fn(x, s)
        if i < sde_steps and eta > 0:
            x, lp, _ = sde_step(x, v, s, s_next, eta, cap, generator=generator)
        else:
            x = x + v * (s_next - s)
            lp = torch.zeros(x.shape[0], device=x.device)
        xs.append(x)
        log_probs.append(lp)
    return Rollout(torch.stack(xs), torch.stack(log_probs), sigmas)
