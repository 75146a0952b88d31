"""Model presets validate, and bad values are named in the error."""

from __future__ import annotations

from dataclasses import replace

import pytest

from executor_core.config_cli import ConfigError, parse_config
from video_models.configuration_executor import (
    MODEL_PRESETS,
    ExecutorModelConfig,
    TransformerConfig,
)
from video_models.train_executor import PRESETS, TrainConfig


def test_presets_exist_and_are_consistent():
    assert {"debug", "sim", "wan2.1-i2v-14b-480p", "wan2.1-i2v-14b-720p"} <= set(MODEL_PRESETS)
    sim = MODEL_PRESETS["sim"]
    assert (sim.size_px, sim.num_frames, sim.frame_stride) == (64, 16, 4)
    assert sim.space == "pixel"
    assert MODEL_PRESETS["wan2.1-i2v-14b-480p"].lora.rank > 0
    assert "debug" in PRESETS


@pytest.mark.parametrize(
    ("change", "quoted"),
    [
        ({"size_px": 60}, "60"),
        ({"num_frames": 15}, "15"),
        ({"space": "voxels"}, "'voxels'"),
        ({"guidance_scale": 0.5}, "0.5"),
        ({"text_encoder": "clip"}, "'clip'"),
        ({"space": "latent"}, "pretrained_path"),
    ],
)
def test_bad_model_values_are_quoted(change, quoted):
    with pytest.raises(ValueError, match=quoted):
        replace(MODEL_PRESETS["sim"], **change)


def test_bad_transformer_values_are_quoted():
    with pytest.raises(ValueError, match="33"):
        TransformerConfig(attention_head_dim=33)
    with pytest.raises(ValueError, match=r"\(1, 0, 8\)"):
        TransformerConfig(patch_size=(1, 0, 8))


def test_cli_overrides_reach_nested_model_fields():
    cfg = parse_config(
        TrainConfig,
        ["--preset", "debug", "--model.num_inference_steps=3", "--data.text_field=prompt"],
        PRESETS,
    )
    assert cfg.model.num_inference_steps == 3
    assert cfg.data.text_field == "prompt"
    assert isinstance(cfg.model, ExecutorModelConfig)
    with pytest.raises(ConfigError, match="'nope'"):
        parse_config(TrainConfig, ["--data.text_field=nope"], PRESETS)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize(
    "field", ["learning_rate", "weight_decay", "max_grad_norm", "logit_normal_std", "max_minutes"]
)
def test_train_config_rejects_non_finite_values(field: str, bad: float):
    with pytest.raises(ValueError, match=rf"{field}.*{bad}"):
        replace(PRESETS["debug"], **{field: bad})


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("field", ["flow_shift", "guidance_scale"])
def test_model_config_rejects_non_finite_values(field: str, bad: float):
    with pytest.raises(ValueError, match=rf"{field}.*{bad}"):
        replace(MODEL_PRESETS["debug"], **{field: bad})
    with pytest.raises(ValueError, match=r"alpha.*nan"):
        replace(MODEL_PRESETS["debug"].lora, alpha=float("nan"))
