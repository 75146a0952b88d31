from __future__ import annotations

import math

import pytest
import torch

from self_distillation.grpo import (
    clipped_surrogate_loss,
    gaussian_kl_same_std,
    gaussian_log_prob,
    group_advantages,
    sample_sde,
    sde_sigma_t,
    sde_step,
    sde_step_mean_std,
)

T = torch.tensor


def test_sde_step_mean_std_hand_computed() -> None:
    # x=1, v=2, s=0.5 -> 0.25, eta=1: sigma_t = sqrt(0.5/0.5) = 1, dt = -0.25
    # mean = 1 + (2 + 1/(2*0.5) * (1 + 0.5*2)) * -0.25 = 1 + 4 * -0.25 = 0; std = sqrt(.25)
    mean, std = sde_step_mean_std(T([[1.0]]), T([[2.0]]), T(0.5), T(0.25), eta=1.0, sigma_cap=0.9)
    assert mean.item() == pytest.approx(0.0)
    assert std.item() == pytest.approx(0.5)
    # eta = 0 is the Euler ODE step: 1 + 2 * -0.25
    mean0, std0 = sde_step_mean_std(T([[1.0]]), T([[2.0]]), T(0.5), T(0.25), eta=0.0, sigma_cap=0.9)
    assert mean0.item() == pytest.approx(0.5)
    assert std0.item() == 0.0


def test_sigma_t_is_clamped_at_pure_noise() -> None:
    assert sde_sigma_t(T(0.5), 0.7, 0.9).item() == pytest.approx(0.7)
    # s = 1: sqrt(1 / (1 - 0.9))
    assert sde_sigma_t(T(1.0), 1.0, 0.9).item() == pytest.approx(math.sqrt(10.0), rel=1e-6)
    with pytest.raises(ValueError, match=r"-0\.1"):
        sde_sigma_t(T(0.5), -0.1, 0.9)
    with pytest.raises(ValueError, match=r"1\.0"):
        sde_sigma_t(T(0.5), 0.7, 1.0)


def test_sigma_must_decrease() -> None:
    with pytest.raises(ValueError, match="decrease"):
        sde_step_mean_std(T([[1.0]]), T([[1.0]]), T(0.2), T(0.3), eta=1.0, sigma_cap=0.9)


def test_gaussian_log_prob_hand_computed_and_averaged() -> None:
    # -(0.5^2)/(2*0.25) - log 0.5 - log sqrt(2 pi) = -0.5 + 0.693147 - 0.918939
    lp = gaussian_log_prob(T([[0.5]]), T([[0.0]]), T(0.5))
    assert lp.item() == pytest.approx(-0.725791, abs=1e-5)
    # averaged, not summed, over elements: two identical elements give the same value
    lp2 = gaussian_log_prob(T([[0.5, 0.5]]), T([[0.0, 0.0]]), T(0.5))
    assert lp2.item() == pytest.approx(lp.item())
    with pytest.raises(ValueError, match="std"):
        gaussian_log_prob(T([[0.5]]), T([[0.0]]), T(0.0))


def test_step_log_prob_rescoring_matches_sampling() -> None:
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    nxt, lp, _mean = sde_step(x, v, T(0.8), T(0.6), 0.7, 0.9, generator=g)
    _, lp_again, _ = sde_step(x, v, T(0.8), T(0.6), 0.7, 0.9, sample=nxt)
    torch.testing.assert_close(lp, lp_again)
    # a different velocity gives the same sample a lower likelihood on average
    _, lp_other, _ = sde_step(x, v + 5.0, T(0.8), T(0.6), 0.7, 0.9, sample=nxt)
    assert torch.all(lp_other < lp)


def test_group_advantages_hand_computed() -> None:
    adv = group_advantages(T([1.0, 2.0, 3.0, 5.0, 5.0]), T([0, 0, 0, 1, 1]))
    # group 0: mean 2, population std sqrt(2/3) = 0.816497; group 1: no signal
    expected = T([-1.224745, 0.0, 1.224745, 0.0, 0.0])
    torch.testing.assert_close(adv, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="same 1-D shape"):
        group_advantages(T([1.0, 2.0]), T([0]))


def test_clipped_surrogate_hand_computed() -> None:
    ratios = T([1.5, 1.5, 0.5, 0.5])
    adv = T([1.0, -1.0, 1.0, -1.0])
    logp = torch.log(ratios).requires_grad_(True)
    loss, stats = clipped_surrogate_loss(logp, torch.zeros(4), adv, clip_range=0.2)
    # per sample max(-A r, -A clip(r)): -1.2, 1.5, -0.5, 0.8 -> mean 0.15
    assert loss.item() == pytest.approx(0.15)
    assert stats["clip_fraction"] == 1.0
    loss.backward()
    # clipped branches (samples 0 and 3) carry no gradient; d/dlogp(-A r) = -A r otherwise
    torch.testing.assert_close(logp.grad, T([0.0, 1.5, -0.5, 0.0]) / 4)


def test_kl_same_std_hand_computed() -> None:
    kl = gaussian_kl_same_std(T([[1.0, 1.0]]), T([[0.0, 0.0]]), T(0.5))
    assert kl.item() == pytest.approx(2.0)  # 1 / (2 * 0.25)
    assert gaussian_kl_same_std(T([[3.0]]), T([[3.0]]), T(0.1)).item() == 0.0


def test_sde_sampler_keeps_the_flow_marginals() -> None:
    # Data = the point c; the exact velocity is (x - c) / s. The SDE must still end at c
    # and its marginal at s = 0.5 must have std 0.5 like the ODE's.
    c = 2.0
    n = 4000
    sigmas = torch.linspace(1.0, 0.0, 41)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, 1, generator=g)

    def velocity(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return (x - c) / s

    roll = sample_sde(velocity, x0, sigmas, eta=0.7, generator=g)
    assert roll.latents.shape == (41, n, 1)
    assert roll.log_probs.shape == (40, n)
    assert torch.all(roll.log_probs[-1] == 0)  # last step is ODE
    mid = roll.latents[20, :, 0]  # s = 0.5: (1 - s) c + s * noise
    assert mid.mean().item() == pytest.approx(0.5 * c, abs=0.05)
    assert mid.std().item() == pytest.approx(0.5, abs=0.05)
    assert roll.latents[-1].sub(c).abs().max().item() < 1e-4
