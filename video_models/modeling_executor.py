"""Build the video world model from an :class:`ExecutorModelConfig`.

* ``debug`` / ``sim``: a ``WanTransformer3DModel`` from scratch over pixels, the MiniLM (or a
  tiny random) text encoder, a stock ``FlowMatchEulerDiscreteScheduler``.
* real scale: every component from a LOCAL diffusers folder (``pretrained_path``), bf16,
  LoRA on the transformer via peft, optional CPU offload and VAE tiling.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

from video_models.configuration_executor import (
    ExecutorModelConfig,
    LoraConfigSpec,
)
from video_models.pipeline_executor import ExecutorVideoPipeline, refuse_pickles
from video_models.text_encoding import build_tiny_text_encoder, build_tiny_tokenizer, load_minilm

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(cfg: ExecutorModelConfig) -> torch.dtype:
    return _DTYPES[cfg.dtype]


def build_transformer(cfg: ExecutorModelConfig, seed: int = 0) -> WanTransformer3DModel:
    """A randomly initialised Wan transformer for pixel-space flow matching."""
    if cfg.space != "pixel":
        raise ValueError(f"build_transformer makes pixel-space models, got space {cfg.space!r}")
    t = cfg.transformer
    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=tuple(t.patch_size),
        num_attention_heads=t.num_attention_heads,
        attention_head_dim=t.attention_head_dim,
        in_channels=cfg.pixel_channels_in,
        out_channels=3,
        text_dim=cfg.text_dim,
        freq_dim=t.freq_dim,
        ffn_dim=t.ffn_dim,
        num_layers=t.num_layers,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        image_dim=t.image_dim,
        rope_max_seq_len=t.rope_max_seq_len,
    )


def build_scheduler(cfg: ExecutorModelConfig) -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=cfg.flow_shift)


def build_text_components(cfg: ExecutorModelConfig) -> tuple[object, object]:
    """(tokenizer, text_encoder) for the from-scratch presets."""
    if cfg.text_encoder == "minilm":
        tokenizer, encoder = load_minilm()
    elif cfg.text_encoder == "tiny-random":
        tokenizer, encoder = build_tiny_tokenizer(), build_tiny_text_encoder(cfg.text_dim)
    else:
        raise ValueError(
            f"text_encoder {cfg.text_encoder!r} comes with a pretrained folder; "
            "use load_pretrained_pipeline"
        )
    width = encoder.config.hidden_size
    if width != cfg.text_dim:
        raise ValueError(f"text_dim {cfg.text_dim!r} but the text encoder is {width} wide")
    return tokenizer, encoder


def build_pipeline(cfg: ExecutorModelConfig, seed: int = 0) -> ExecutorVideoPipeline:
    """A fresh (untrained) pipeline for the pixel-space presets."""
    tokenizer, text_encoder = build_text_components(cfg)
    return assemble_pipeline(
        cfg, build_transformer(cfg, seed), text_encoder=text_encoder, tokenizer=tokenizer
    )


def assemble_pipeline(
    cfg: ExecutorModelConfig, transformer: WanTransformer3DModel, **components: Any
) -> ExecutorVideoPipeline:
    """An :class:`ExecutorVideoPipeline` around ``transformer`` with the config's scheduler
    and sampling settings; ``components``: text_encoder, tokenizer, vae, image_encoder, ...
    (those left out are None: a MiniLM text encoder is then re-loaded by from_pretrained)."""
    return ExecutorVideoPipeline(
        transformer=transformer,
        scheduler=build_scheduler(cfg),
        size_px=cfg.size_px,
        num_frames=cfg.num_frames,
        max_text_tokens=cfg.max_text_tokens,
        num_inference_steps=cfg.num_inference_steps,
        guidance_scale=cfg.guidance_scale,
        text_encoder_package="minilm" if cfg.text_encoder == "minilm" else None,
        prediction=cfg.prediction,
        **components,
    )


def add_lora(transformer: WanTransformer3DModel, spec: LoraConfigSpec) -> WanTransformer3DModel:
    """Freeze the base weights and add a trainable LoRA adapter (peft) named "default"."""
    from peft import LoraConfig

    if spec.rank == 0:
        return transformer
    transformer.requires_grad_(False)
    transformer.add_adapter(
        LoraConfig(
            r=spec.rank,
            lora_alpha=spec.alpha,
            lora_dropout=spec.dropout,
            target_modules=list(spec.target_modules),
            init_lora_weights=True,
        )
    )
    n_train = sum(p.numel() for p in transformer.parameters() if p.requires_grad)
    logger.info("LoRA rank %d: %d trainable parameters", spec.rank, n_train)
    return transformer


def load_pretrained_pipeline(
    cfg: ExecutorModelConfig, path: str | Path | None = None, device: str | None = None
) -> ExecutorVideoPipeline:
    """A real-scale pipeline from a local diffusers folder of a Wan2.1-I2V model.

    The folder is the usual diffusers layout (``transformer/``, ``vae/``, ``text_encoder/``,
    ``tokenizer/``, ``scheduler/``, optionally ``image_encoder/`` + ``image_processor/``).
    We always use our stock Euler flow-matching scheduler with ``cfg.flow_shift`` (the GRPO
    SDE sampler is defined on its sigmas).
    """
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel

    root = Path(path or cfg.pretrained_path or "")
    if not (root / "transformer").is_dir():
        raise FileNotFoundError(
            f"pretrained folder {str(root)!r} has no transformer/ (local paths only, no hub)"
        )
    for sub in ("transformer", "vae", "text_encoder"):
        folder = root / sub
        if not folder.is_dir():
            raise FileNotFoundError(f"pretrained folder is missing {str(folder)!r}")
        if not any(folder.glob("*.safetensors")):
            refuse_pickles(folder)
            found = sorted(p.name for p in folder.iterdir())
            raise FileNotFoundError(f"no safetensors weights in {str(folder)!r} (found {found!r})")
    dtype = torch_dtype(cfg)
    common = {"local_files_only": True, "use_safetensors": True}
    transformer = WanTransformer3DModel.from_pretrained(
        root, subfolder="transformer", torch_dtype=dtype, **common
    )
    # The VAE stays float32: its decoder in bf16 visibly bands colours.
    vae = AutoencoderKLWan.from_pretrained(
        root, subfolder="vae", torch_dtype=torch.float32, **common
    )
    text_encoder = UMT5EncoderModel.from_pretrained(
        root, subfolder="text_encoder", dtype=dtype, **common
    )
    tokenizer = AutoTokenizer.from_pretrained(root, subfolder="tokenizer", local_files_only=True)
    image_encoder = image_processor = None
    if (root / "image_encoder").is_dir():
        from transformers import CLIPImageProcessor, CLIPVisionModel

        image_encoder = CLIPVisionModel.from_pretrained(
            root, subfolder="image_encoder", dtype=torch.float32, **common
        )
        image_processor = CLIPImageProcessor.from_pretrained(
            root, subfolder="image_processor", local_files_only=True
        )
    add_lora(transformer, cfg.lora)
    pipe = assemble_pipeline(
        cfg,
        transformer,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        vae=vae,
        image_encoder=image_encoder,
        image_processor=image_processor,
    )
    if cfg.vae_tiling:
        vae.enable_tiling()
    if cfg.cpu_offload and torch.cuda.is_available():
        pipe.enable_model_cpu_offload()
    elif device is not None:
        pipe.to(device)
    return pipe
