"""Build the video world model from an :class:`ExecutorModelConfig`.

* ``debug`` / ``sim``: a ``WanTransformer3DModel`` from scratch over pixels, the MiniLM (or a
  tiny random) text encoder, a stock ``FlowMatchEulerDiscreteScheduler``.
* real scale: every component from a LOCAL diffusers folder (``pretrained_path``), bf16,
  LoRA on the transformer via peft, optional gradient checkpointing, CPU offload and VAE
  tiling. Wan2.1-I2V, LTX-2 and HunyuanVideo-1.5 folders; the component classes are read from
  the folder's ``model_index.json`` and must be on the backbone's list.
* LoRA adapters of a trained Executor/Demonstrator: ``save_lora``/``load_pretrained_pipeline(
  ..., lora_path=...)`` (safetensors through diffusers' ``save_lora_adapter``).
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

from executor_core.safe_loading import refuse_pickles
from video_models.configuration_executor import (
    MODEL_PRESETS,
    ExecutorModelConfig,
    LoraConfigSpec,
)
from video_models.pipeline_executor import ExecutorVideoPipeline
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
        backbone=cfg.backbone,
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
            target_modules=spec.target_regex or list(spec.target_modules),
            init_lora_weights=True,
        )
    )
    n_train = sum(p.numel() for p in transformer.parameters() if p.requires_grad)
    logger.info("LoRA rank %d: %d trainable parameters", spec.rank, n_train)
    return transformer


def _load_wan(cfg: ExecutorModelConfig, root: Path) -> tuple[Any, dict[str, Any]]:
    """(transformer, other components) of a local diffusers folder of a Wan2.1-I2V model.

    The folder is the usual diffusers layout (``transformer/``, ``vae/``, ``text_encoder/``,
    ``tokenizer/``, ``scheduler/``, optionally ``image_encoder/`` + ``image_processor/``).
    We always use our stock Euler flow-matching scheduler with ``cfg.flow_shift`` (the GRPO
    SDE sampler is defined on its sigmas).
    """
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel

    _check_weight_folders(root, ("transformer", "vae", "text_encoder"))
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
    return transformer, {
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "vae": vae,
        "image_encoder": image_encoder,
        "image_processor": image_processor,
    }


def _check_weight_folders(root: Path, subfolders: tuple[str, ...]) -> None:
    """Each weight folder exists and holds safetensors; a pickle-only one is refused."""
    if not (root / "transformer").is_dir():
        raise FileNotFoundError(
            f"pretrained folder {str(root)!r} has no transformer/ (local paths only, no hub)"
        )
    for sub in subfolders:
        folder = root / sub
        if not folder.is_dir():
            raise FileNotFoundError(f"pretrained folder is missing {str(folder)!r}")
        if not any(folder.glob("*.safetensors")):
            refuse_pickles(folder)
            found = sorted(p.name for p in folder.iterdir())
            raise FileNotFoundError(f"no safetensors weights in {str(folder)!r} (found {found!r})")


# Per backbone: (component in the folder, our pipeline's name for it, required, the classes
# we accept for it). Audio VAE, vocoder, guider etc. are not loaded (video only).
_COMPONENTS: dict[str, tuple[tuple[str, str, bool, tuple[str, ...]], ...]] = {
    "ltx2": (
        ("transformer", "transformer", True, ("LTX2VideoTransformer3DModel",)),
        ("vae", "vae", True, ("AutoencoderKLLTX2Video",)),
        ("text_encoder", "text_encoder", True, ("Gemma3ForConditionalGeneration",)),
        ("tokenizer", "tokenizer", True, ()),
        ("connectors", "connectors", True, ("LTX2TextConnectors",)),
    ),
    "hunyuanvideo15": (
        ("transformer", "transformer", True, ("HunyuanVideo15Transformer3DModel",)),
        ("vae", "vae", True, ("AutoencoderKLHunyuanVideo15",)),
        ("text_encoder", "text_encoder", True, ("Qwen2_5_VLTextModel",)),
        ("tokenizer", "tokenizer", True, ()),
        ("text_encoder_2", "text_encoder_2", False, ("T5EncoderModel",)),
        ("tokenizer_2", "tokenizer_2", False, ()),
        ("image_encoder", "image_encoder", False, ("SiglipVisionModel",)),
        ("feature_extractor", "image_processor", False, ("SiglipImageProcessor",)),
    ),
}
_MODULES = {"diffusers": "diffusers", "transformers": "transformers"}
_CONNECTOR_MODULE = "diffusers.pipelines.ltx2.connectors"


def _component_class(index: dict[str, Any], name: str, allowed: tuple[str, ...]) -> Any:
    """The class model_index.json names for ``name``, if it is on the allowed list."""
    library, cls_name = index[name]
    if cls_name == "LTX2TextConnectors" and cls_name in allowed:  # a pipeline-local module
        return importlib.import_module(_CONNECTOR_MODULE).LTX2TextConnectors
    if library not in _MODULES or (allowed and cls_name not in allowed):
        raise ValueError(
            f"model_index.json gives {name!r} as {library}.{cls_name}; expected one of "
            f"{list(allowed)!r} (diffusers/transformers)"
        )
    return getattr(importlib.import_module(_MODULES[library]), cls_name)


def _load_component(root: Path, sub: str, cls: Any, dtype: torch.dtype) -> Any:
    """One component with safetensors only (tokenizers and processors: their own files)."""
    if sub.startswith("tokenizer"):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(root / sub, local_files_only=True)
    if sub == "feature_extractor":
        return cls.from_pretrained(root / sub, local_files_only=True)
    common = {"local_files_only": True, "use_safetensors": True}
    if cls.__module__.startswith("transformers"):
        return cls.from_pretrained(root / sub, dtype=dtype, **common)
    return cls.from_pretrained(root / sub, torch_dtype=dtype, **common)


def _load_backbone_folder(
    cfg: ExecutorModelConfig, root: Path, with_text_encoder: bool
) -> tuple[Any, dict[str, Any]]:
    """(transformer, other components) of a local LTX-2 / HunyuanVideo-1.5 folder."""
    specs = _COMPONENTS[cfg.backbone]
    index_path = root / "model_index.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{str(root)!r} has no model_index.json (a diffusers folder)")
    index = json.loads(index_path.read_text())
    present = [s for s in specs if s[0] in index and index[s[0]] and index[s[0]][0]]
    missing = [s[0] for s in specs if s[2] and s not in present]
    if missing:
        raise FileNotFoundError(f"{str(root)!r} lacks the components {missing!r}")
    weights = tuple(
        s[0] for s in present if not s[0].startswith("tokenizer") and s[0] != "feature_extractor"
    )
    _check_weight_folders(root, weights)
    dtype = torch_dtype(cfg)
    parts: dict[str, Any] = {}
    for sub, ours, _, allowed in present:
        if not with_text_encoder and ours in ("text_encoder", "text_encoder_2"):
            continue
        cls = _component_class(index, sub, allowed)
        # VAE and image encoder stay float32 (a bf16 VAE decoder bands colours).
        keep_fp32 = sub in ("vae", "image_encoder")
        parts[ours] = _load_component(root, sub, cls, torch.float32 if keep_fp32 else dtype)
    return parts.pop("transformer"), parts


def load_pretrained_pipeline(
    cfg: ExecutorModelConfig,
    path: str | Path | None = None,
    device: str | None = None,
    lora_path: str | Path | None = None,
    with_text_encoder: bool = True,
    seed: int = 0,
) -> ExecutorVideoPipeline:
    """A real-scale pipeline from a LOCAL diffusers folder of the preset's backbone
    (Wan2.1-I2V, LTX-2 or HunyuanVideo-1.5), safetensors only, with a LoRA adapter on the
    transformer (``lora_path``: a trained one, see :func:`save_lora`; else a fresh one of
    ``cfg.lora``, initialised from ``seed``), the memory options of the config, on
    ``device``.

    ``with_text_encoder=False`` leaves the text encoders out (training from a clip cache
    that already holds the text states). We always use our stock Euler flow-matching
    scheduler with ``cfg.flow_shift`` (the GRPO SDE sampler is defined on its sigmas).
    """
    root = Path(path or cfg.pretrained_path or "")
    if cfg.space != "latent":
        raise ValueError(f"preset {cfg.name!r} is not a pretrained (latent) preset")
    if not root.is_dir():
        raise FileNotFoundError(
            f"pretrained folder {str(root)!r} has no transformer/ (local paths only, no hub)"
        )
    if cfg.backbone == "wan":
        transformer, parts = _load_wan(cfg, root)
        if not with_text_encoder:
            parts.pop("text_encoder")
    else:
        transformer, parts = _load_backbone_folder(cfg, root, with_text_encoder)
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    if lora_path is not None:
        load_lora(transformer, lora_path)
    else:
        with torch.random.fork_rng(devices=[]):  # the same adapter init on every load
            torch.manual_seed(seed)
            add_lora(transformer, cfg.lora)
    pipe = assemble_pipeline(cfg, transformer, **parts)
    if cfg.vae_tiling and hasattr(pipe.vae, "enable_tiling"):
        pipe.vae.enable_tiling()
    if cfg.cpu_offload and torch.cuda.is_available() and device in (None, "cuda"):
        pipe.enable_model_cpu_offload()
    elif device is not None:
        pipe.to(device)
    return pipe


LORA_INFO = "executor_lora.json"  # beside the adapter: which preset and base folder


def is_lora_export(path: str | Path | None) -> bool:
    """True for a folder :func:`save_lora` wrote (an adapter + ``executor_lora.json``)."""
    return path is not None and (Path(path) / LORA_INFO).is_file()


def lora_export_config(
    path: str | Path, base_dir: str | Path | None = None, device: str = "cuda"
) -> ExecutorModelConfig:
    """The preset a LoRA export names, with its base folder (``base_dir`` overrides where
    the base is on this machine); on a CPU in float32 without offload."""
    info = json.loads((Path(path) / LORA_INFO).read_text())
    if info.get("preset") not in MODEL_PRESETS:
        raise ValueError(
            f"{str(Path(path) / LORA_INFO)!r} names unknown preset {info.get('preset')!r}"
        )
    cfg = replace(
        MODEL_PRESETS[info["preset"]], pretrained_path=Path(base_dir or info["pretrained_path"])
    )
    if device == "cpu":  # bf16 matmuls are slow or missing on CPUs
        cfg = replace(cfg, dtype="float32", cpu_offload=False)
    return cfg


def load_local_pipeline(
    path: str | Path, device: str = "auto", base_dir: str | Path | None = None, seed: int = 0
) -> ExecutorVideoPipeline:
    """Any preset from a local folder on ``device`` ("auto": CUDA if there is one): a saved
    pipeline (``from_pretrained``), or a LoRA export put on its base folder (the adapter
    trainable, as after :func:`load_pretrained_pipeline`)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not is_lora_export(path):
        return ExecutorVideoPipeline.from_pretrained(path).to(device)
    cfg = lora_export_config(path, base_dir, device)
    return load_pretrained_pipeline(
        cfg, cfg.pretrained_path, device=device, lora_path=path, seed=seed
    )


def save_lora(transformer: Any, folder: str | Path, cfg: ExecutorModelConfig) -> Path:
    """The trainable LoRA adapter as safetensors (diffusers' ``save_lora_adapter``) plus
    ``executor_lora.json`` naming the preset and the base folder it applies to."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    transformer.save_lora_adapter(folder, adapter_name="default", safe_serialization=True)
    info = {
        "preset": cfg.name,
        "backbone": cfg.backbone,
        "pretrained_path": str(cfg.pretrained_path),
    }
    (folder / LORA_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return folder


def load_lora(transformer: Any, folder: str | Path) -> Any:
    """Load a saved adapter (safetensors only; pickles refused) as the trainable "default"."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"LoRA folder not found: {str(folder)!r} (local paths only)")
    refuse_pickles(folder)
    if not any(folder.glob("*.safetensors")):
        raise FileNotFoundError(f"no safetensors LoRA weights in {str(folder)!r}")
    transformer.requires_grad_(False)
    transformer.load_lora_adapter(folder, prefix=None, adapter_name="default", use_safetensors=True)
    if "default" not in (getattr(transformer, "peft_config", None) or {}):
        raise ValueError(f"no LoRA weights of this transformer found in {str(folder)!r}")
    for name, param in transformer.named_parameters():
        if "lora_" in name:
            param.requires_grad_(True)
    return transformer
