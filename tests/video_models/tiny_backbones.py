"""Tiny random LTX-2 / HunyuanVideo-1.5 / Wan2.1-I2V folders in diffusers layout.

Every component is built from its config class with tiny sizes (as diffusers' own tests
do) and saved as safetensors with a ``model_index.json``, so the tests load them through
the real local-path loader (``modeling_executor.load_pretrained_pipeline``). The VAEs keep
their real compression factors (LTX-2: 32 x 8, HunyuanVideo-1.5: 16 x 4).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from test_real_scale_executor import write_tiny_wan_i2v

from video_models.clips_executor import make_clip_cache, write_clip_cache
from video_models.configuration_executor import MODEL_PRESETS
from video_models.text_encoding import build_tiny_tokenizer

PRESET = {"wan": "wan2.1-i2v-14b-480p", "ltx2": "ltx2-i2v", "hunyuanvideo15": "hunyuanvideo15-i2v"}
# (size_px, num_frames) per backbone: 2 x 2 x 2 latents (Wan: 2 x 4 x 4)
GEOMETRY = {"wan": (32, 5), "ltx2": (64, 9), "hunyuanvideo15": (32, 5)}


def tiny_cfg(backbone: str, **changes):
    """The backbone's real-scale preset at CPU size: fp32, 2 steps, LoRA rank 4."""
    size, frames = GEOMETRY[backbone]
    base = {
        "size_px": size,
        "num_frames": frames,
        "num_inference_steps": 2,
        "max_text_tokens": 32,
        "dtype": "float32",
        "lora": replace(MODEL_PRESETS[PRESET[backbone]].lora, rank=4, alpha=4.0),
        "cpu_offload": False,
        "vae_tiling": False,
        "gradient_checkpointing": False,
    }
    base.update(changes)
    return replace(MODEL_PRESETS[PRESET[backbone]], **base)


def _index(root: Path, pipeline: str, parts: dict[str, tuple[str, str]]) -> None:
    index = {"_class_name": pipeline, "_diffusers_version": "0.42.1"}
    index.update({k: list(v) for k, v in parts.items()})
    (root / "model_index.json").write_text(json.dumps(index, indent=2))


def write_tiny_ltx2(root: Path) -> Path:
    from diffusers import AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    gemma = Gemma3ForConditionalGeneration(
        Gemma3Config(
            text_config={
                "vocab_size": len(tokenizer),
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "head_dim": 8,
                "max_position_embeddings": 64,
                "sliding_window": 16,
            },
            vision_config={
                "hidden_size": 8,
                "intermediate_size": 16,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 16,
                "patch_size": 8,
            },
            mm_tokens_per_image=4,
        )
    )
    connectors = LTX2TextConnectors(
        caption_channels=16,
        text_proj_in_factor=3,  # Gemma layers + embeddings
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
    )
    vae = AutoencoderKLLTX2Video(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    transformer = LTX2VideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=1,
        caption_channels=16,
    )
    for name, module in (
        ("transformer", transformer),
        ("vae", vae),
        ("text_encoder", gemma),
        ("tokenizer", tokenizer),
        ("connectors", connectors),
    ):
        module.save_pretrained(root / name)
    _index(
        root,
        "LTX2ImageToVideoPipeline",
        {
            "transformer": ("diffusers", "LTX2VideoTransformer3DModel"),
            "vae": ("diffusers", "AutoencoderKLLTX2Video"),
            "text_encoder": ("transformers", "Gemma3ForConditionalGeneration"),
            "tokenizer": ("transformers", "GemmaTokenizerFast"),
            "connectors": ("ltx2", "LTX2TextConnectors"),
        },
    )
    return root


def write_tiny_hunyuan15(root: Path) -> Path:
    from diffusers import AutoencoderKLHunyuanVideo15, HunyuanVideo15Transformer3DModel
    from transformers import (
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        SiglipImageProcessor,
        SiglipVisionConfig,
        SiglipVisionModel,
        T5Config,
        T5EncoderModel,
    )

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    qwen = Qwen2_5_VLTextModel(
        Qwen2_5_VLTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
            bos_token_id=2,
            eos_token_id=3,
            rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
        )
    )
    byt5 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer), d_model=8, d_ff=16, d_kv=4, num_heads=2, num_layers=1)
    )
    siglip = SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=12,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        )
    )
    processor = SiglipImageProcessor(size={"height": 16, "width": 16})
    vae = AutoencoderKLHunyuanVideo15(
        latent_channels=4, block_out_channels=(8,) * 5, layers_per_block=1
    )
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=9,  # noisy 4 + image latent 4 + mask 1
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        num_refiner_layers=1,
        text_embed_dim=16,
        text_embed_2_dim=8,
        image_embed_dim=12,
        rope_axes_dim=(2, 2, 4),
        target_size=32,
    )
    for name, module in (
        ("transformer", transformer),
        ("vae", vae),
        ("text_encoder", qwen),
        ("tokenizer", tokenizer),
        ("text_encoder_2", byt5),
        ("tokenizer_2", tokenizer),
        ("image_encoder", siglip),
        ("feature_extractor", processor),
    ):
        module.save_pretrained(root / name)
    _index(
        root,
        "HunyuanVideo15ImageToVideoPipeline",
        {
            "transformer": ("diffusers", "HunyuanVideo15Transformer3DModel"),
            "vae": ("diffusers", "AutoencoderKLHunyuanVideo15"),
            "text_encoder": ("transformers", "Qwen2_5_VLTextModel"),
            "tokenizer": ("transformers", "Qwen2Tokenizer"),
            "text_encoder_2": ("transformers", "T5EncoderModel"),
            "tokenizer_2": ("transformers", "ByT5Tokenizer"),
            "image_encoder": ("transformers", "SiglipVisionModel"),
            "feature_extractor": ("transformers", "SiglipImageProcessor"),
        },
    )
    return root


WRITERS = {
    "wan": write_tiny_wan_i2v,
    "ltx2": write_tiny_ltx2,
    "hunyuanvideo15": write_tiny_hunyuan15,
}


def write_tiny_cache(pipe, backbone: str, path: Path) -> Path:
    """A clip cache of 4 random clips (2 episodes, 2 texts) encoded by ``pipe``'s encoder."""
    cfg = tiny_cfg(backbone)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, cfg.num_frames, cfg.size_px, cfg.size_px, 3), np.uint8)
    texts = ["put the red cube in the bowl", "push the green cube to the left"]
    cache = make_clip_cache(
        frames,
        [0, 0, 1, 1],
        [texts[0], texts[0], texts[1], texts[1]],
        texts,
        lambda t: pipe.encode_prompt(t, torch.device("cpu")),
        "solution",
    )
    return write_clip_cache(cache, path)
