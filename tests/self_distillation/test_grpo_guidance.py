"""GRPO trains the sampler the pipeline runs: its velocity uses the pipeline's CFG scale."""

from __future__ import annotations

from dataclasses import replace

import torch

from self_distillation.grpo_trainer import PRESETS, PolicyAndReference, policy_guidance, velocity
from video_models.configuration_executor import MODEL_PRESETS
from video_models.modeling_executor import build_pipeline


def _pipe(guidance: float):
    torch.manual_seed(0)
    return build_pipeline(replace(MODEL_PRESETS["debug"], guidance_scale=guidance), seed=0)


def test_policy_guidance_defaults_to_the_pipeline_and_can_be_overridden() -> None:
    pipe = _pipe(3.0)
    assert policy_guidance(pipe, PRESETS["debug"]) == 3.0
    assert policy_guidance(pipe, replace(PRESETS["debug"], guidance_scale=1.0)) == 1.0
    assert PolicyAndReference(pipe, PRESETS["debug"]).guidance == 3.0


def test_velocity_with_guidance_is_the_cfg_combination() -> None:
    torch.set_num_threads(1)
    pipe = _pipe(3.0)
    cfg = pipe.config
    shape = pipe.latent_shape(2, cfg.num_frames, cfg.size_px)
    x = torch.randn(shape)
    first = torch.rand(2, 3, cfg.size_px, cfg.size_px) * 2 - 1
    cond = pipe.prepare_condition(first, cfg.num_frames)
    emb = pipe.encode_prompt(["put the red cube in the bowl"] * 2, torch.device("cpu"))
    sigma = torch.tensor(0.6)
    with torch.no_grad():
        v_cond = velocity(pipe, x, sigma, cond, emb, 1.0)
        v_free = velocity(pipe, x, sigma, cond, torch.zeros_like(emb), 1.0)
        v_cfg = velocity(pipe, x, sigma, cond, emb, 3.0)
    expected = v_free + 3.0 * (v_cond - v_free)
    assert not torch.allclose(v_cond, v_free)  # the text matters, so the check can fail
    torch.testing.assert_close(v_cfg, expected, atol=1e-4, rtol=1e-4)
