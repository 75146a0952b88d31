"""Configuration of the video world model (Demonstrator and Executor share it).

Two families of presets:

* ``debug`` / ``sim``: a Wan transformer built from scratch, working in **pixel space**
  (no VAE: a 64 px clip is small enough that a (1, 8, 8) patchify is the compression), text
  from the offline MiniLM sentence encoder (token-level hidden states).
* real-scale (``wan2.1-i2v-14b-480p``, ``wan2.1-i2v-14b-720p``, ``ltx2-i2v``,
  ``hunyuanvideo15-i2v``): every component is loaded from a diffusers-format folder on a
  LOCAL path (``pretrained_path``), the transformer gets a LoRA adapter via peft, weights in
  bf16 on GPU, optional gradient checkpointing, CPU offload and VAE tiling. ``backbone``
  names the diffusers transformer class (``video_models.backbones``).

The Demonstrator and the Executor differ only in weights and in the text they are given
(``text_field``: the detailed ``solution`` or the short ``prompt``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

TextEncoderKind = Literal["minilm", "t5", "gemma3", "qwen2.5-vl", "tiny-random"]
Backbone = Literal["wan", "ltx2", "hunyuanvideo15"]
Space = Literal["pixel", "latent"]
Prediction = Literal["velocity", "sample"]
DType = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class TransformerConfig:
    """The ``WanTransformer3DModel`` arguments we choose (the rest keep diffusers' defaults)."""

    # (frames, height_px, width_px) per token: 64 px x 16 frames -> 8 x 8 x 8 = 512 tokens,
    # the most a 2-core CPU can attend over ~8 times in < 2 s (measured, benchmarks/).
    patch_size: tuple[int, int, int] = (2, 8, 8)
    num_attention_heads: int = 4
    attention_head_dim: int = 40
    ffn_dim: int = 640
    num_layers: int = 6
    freq_dim: int = 64
    rope_max_seq_len: int = 256
    image_dim: int | None = None  # CLIP image-embedding width (Wan2.1-I2V uses 1280)

    def __post_init__(self) -> None:
        if len(self.patch_size) != 3 or any(int(p) <= 0 for p in self.patch_size):
            raise ValueError(f"patch_size must be 3 positive ints, got {self.patch_size!r}")
        for name in (
            "num_attention_heads",
            "attention_head_dim",
            "ffn_dim",
            "num_layers",
            "freq_dim",
            "rope_max_seq_len",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.attention_head_dim % 2:
            raise ValueError(
                f"attention_head_dim must be even (rotary), got {self.attention_head_dim!r}"
            )


@dataclass(frozen=True)
class LoraConfigSpec:
    """LoRA on the transformer's attention and FFN projections (real-scale fine-tuning)."""

    rank: int = 0  # 0 = no adapter (full fine-tuning / from scratch)
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    # A regular expression over module names (peft's full match) instead of target_modules,
    # e.g. LTX-2's video attention only (its audio stream is not used).
    target_regex: str = ""

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise ValueError(f"lora rank must be >= 0, got {self.rank!r}")
        if not math.isfinite(self.alpha):
            raise ValueError(f"lora alpha must be finite, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora dropout must be in [0, 1), got {self.dropout!r}")
        if self.rank and not (self.target_modules or self.target_regex):
            raise ValueError(f"lora target_modules is empty for rank {self.rank!r}")


@dataclass(frozen=True)
class ExecutorModelConfig:
    """Everything needed to build (or load) one video world model and sample from it."""

    name: str = "sim"
    # The transformer family: "wan" (WanTransformer3DModel; also the pixel-space presets),
    # "ltx2" (LTX2VideoTransformer3DModel), "hunyuanvideo15" (HunyuanVideo15Transformer3DModel).
    backbone: Backbone = "wan"
    space: Space = "pixel"
    size_px: int = 64  # square frames; the camera image goes through center_crop_resize
    num_frames: int = 16  # first frame + 15 future frames (docs/ARCHITECTURE.md)
    frame_stride: int = 4  # dataset steps between two video frames (10 Hz / 4 = 2.5 Hz)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    text_encoder: TextEncoderKind = "minilm"
    text_dim: int = 384  # width of the text encoder's hidden states (MiniLM: 384)
    max_text_tokens: int = 112  # the sim's 6-step solutions are <= 100 MiniLM tokens
    flow_shift: float = 3.0  # timestep shift of the flow-matching schedule (Wan uses 3-5)
    # What the transformer outputs. In pixel space with 8x8 patches a token is narrower than
    # its patch (160 < 2*8*8*3), so it cannot carry the noise that a velocity contains:
    # velocity prediction leaves the initial noise in the video (measured). It predicts the
    # clean video instead ("sample") and the pipeline converts it to a velocity.
    # Pretrained Wan checkpoints predict "velocity".
    prediction: Prediction = "sample"
    num_inference_steps: int = 8
    guidance_scale: float = 1.0  # > 1 turns classifier-free guidance on (2 passes per step)
    # Real scale only: a diffusers-format folder (model_index.json, transformer/, vae/, ...).
    pretrained_path: Path | None = None
    lora: LoraConfigSpec = field(default_factory=LoraConfigSpec)
    dtype: DType = "float32"
    cpu_offload: bool = False
    vae_tiling: bool = False
    gradient_checkpointing: bool = False  # recompute activations in backward (training)

    def __post_init__(self) -> None:
        if self.backbone not in ("wan", "ltx2", "hunyuanvideo15"):
            raise ValueError(
                f"backbone must be 'wan', 'ltx2' or 'hunyuanvideo15', got {self.backbone!r}"
            )
        if self.backbone != "wan" and self.space != "latent":
            raise ValueError(f"backbone {self.backbone!r} runs in latent space, set space='latent'")
        if self.space not in ("pixel", "latent"):
            raise ValueError(f"space must be 'pixel' or 'latent', got {self.space!r}")
        if self.size_px <= 0 or self.num_frames < 2 or self.frame_stride <= 0:
            raise ValueError(
                f"need size_px > 0, num_frames >= 2, frame_stride > 0; got "
                f"{self.size_px!r}, {self.num_frames!r}, {self.frame_stride!r}"
            )
        p_t, p_h, p_w = self.transformer.patch_size
        spatial = self.size_px if self.space == "pixel" else self.size_px // 8
        if self.space == "pixel" and (spatial % p_h or spatial % p_w):
            raise ValueError(
                f"size_px {self.size_px!r} is not a multiple of patch_size "
                f"{self.transformer.patch_size!r}"
            )
        if self.space == "pixel" and self.num_frames % p_t:
            raise ValueError(
                f"num_frames {self.num_frames!r} is not a multiple of the temporal patch {p_t!r}"
            )
        if self.space == "latent" and self.pretrained_path is None:
            raise ValueError("space 'latent' loads a pretrained VAE: set pretrained_path")
        if self.text_encoder not in ("minilm", "t5", "gemma3", "qwen2.5-vl", "tiny-random"):
            raise ValueError(f"unknown text_encoder {self.text_encoder!r}")
        if self.text_dim <= 0 or self.max_text_tokens <= 0:
            raise ValueError(
                f"text_dim and max_text_tokens must be > 0, got {self.text_dim!r}, "
                f"{self.max_text_tokens!r}"
            )
        if self.prediction not in ("velocity", "sample"):
            raise ValueError(f"prediction must be 'velocity' or 'sample', got {self.prediction!r}")
        if not (self.flow_shift > 0 and math.isfinite(self.flow_shift)):
            raise ValueError(f"flow_shift must be > 0 and finite, got {self.flow_shift!r}")
        if self.num_inference_steps <= 0:
            raise ValueError(f"num_inference_steps must be > 0, got {self.num_inference_steps!r}")
        if not (self.guidance_scale >= 1.0 and math.isfinite(self.guidance_scale)):
            raise ValueError(f"guidance_scale must be >= 1 and finite, got {self.guidance_scale!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"unknown dtype {self.dtype!r}")

    @property
    def pixel_channels_in(self) -> int:
        """Transformer input channels in pixel space: noisy RGB + mask + first-frame RGB."""
        return 3 + 1 + 3


DEBUG = ExecutorModelConfig(
    name="debug",
    size_px=16,
    num_frames=4,
    transformer=TransformerConfig(
        patch_size=(2, 4, 4),
        num_attention_heads=2,
        attention_head_dim=8,
        ffn_dim=32,
        num_layers=1,
        freq_dim=16,
        rope_max_seq_len=64,
    ),
    text_encoder="tiny-random",
    text_dim=16,
    max_text_tokens=16,
    num_inference_steps=2,
)

SIM = ExecutorModelConfig()

# Wan2.1-I2V-14B in diffusers format (e.g. a local copy of "Wan2.1-I2V-14B-480P-Diffusers").
# The transformer dims come from the checkpoint; the fields here set how we run it.
WAN21_I2V_14B_480P = ExecutorModelConfig(
    name="wan2.1-i2v-14b-480p",
    space="latent",
    size_px=480,
    num_frames=81,
    frame_stride=1,
    transformer=TransformerConfig(
        patch_size=(1, 2, 2),
        num_attention_heads=40,
        attention_head_dim=128,
        ffn_dim=13824,
        num_layers=40,
        freq_dim=256,
        rope_max_seq_len=1024,
        image_dim=1280,
    ),
    text_encoder="t5",
    text_dim=4096,
    prediction="velocity",
    max_text_tokens=512,
    flow_shift=3.0,
    num_inference_steps=40,
    guidance_scale=5.0,
    pretrained_path=Path("models/Wan2.1-I2V-14B-480P-Diffusers"),
    lora=LoraConfigSpec(rank=32, alpha=32.0),
    dtype="bfloat16",
    cpu_offload=True,
    vae_tiling=True,
)

WAN21_I2V_14B_720P = replace(
    WAN21_I2V_14B_480P,
    name="wan2.1-i2v-14b-720p",
    size_px=720,
    flow_shift=5.0,
    pretrained_path=Path("models/Wan2.1-I2V-14B-720P-Diffusers"),
)

# LTX-2 image-to-video (a local diffusers copy of Lightricks' LTX-2; the distilled
# checkpoint samples in 8 steps without CFG). Square 512 px (a multiple of the VAE's 32),
# 121 frames (1 + 8k for its temporal factor 8) = 5 s at 24 fps. Text: Gemma-3 through the
# LTX-2 connectors (1024 tokens). Only the video stream is used (backbones.py).
# The video stream's self- and text-attention projections (not audio_attn*, not the
# audio<->video attention: the audio stream is cut off, an adapter there would not train).
LTX2_VIDEO_ATTENTION = r".*(?<!audio_)attn[12]\.(to_q|to_k|to_v|to_out\.0)"

LTX2_I2V = ExecutorModelConfig(
    name="ltx2-i2v",
    backbone="ltx2",
    space="latent",
    size_px=512,
    num_frames=121,
    frame_stride=1,
    text_encoder="gemma3",
    text_dim=3840,
    prediction="velocity",
    max_text_tokens=1024,
    flow_shift=3.0,
    num_inference_steps=8,
    guidance_scale=1.0,
    pretrained_path=Path("models/LTX-2"),
    lora=LoraConfigSpec(rank=32, alpha=32.0, target_regex=LTX2_VIDEO_ATTENTION),
    dtype="bfloat16",
    cpu_offload=True,
    vae_tiling=True,
    gradient_checkpointing=True,
)

# HunyuanVideo-1.5 image-to-video, 480p (a local copy of the diffusers 480p i2v folder).
# Square 480 px (a multiple of the VAE's 16), 121 frames (1 + 4k). Text: Qwen2.5-VL (1000
# tokens) + byT5 for quoted glyph text; image: SigLIP + the VAE latent of frame 0. 25 steps.
HUNYUANVIDEO15_I2V = ExecutorModelConfig(
    name="hunyuanvideo15-i2v",
    backbone="hunyuanvideo15",
    space="latent",
    size_px=480,
    num_frames=121,
    frame_stride=1,
    text_encoder="qwen2.5-vl",
    text_dim=3584,
    prediction="velocity",
    max_text_tokens=1000,
    flow_shift=5.0,
    num_inference_steps=25,
    guidance_scale=6.0,
    pretrained_path=Path("models/HunyuanVideo-1.5-Diffusers-480p_i2v"),
    lora=LoraConfigSpec(rank=32, alpha=32.0),
    dtype="bfloat16",
    cpu_offload=True,
    vae_tiling=True,
    gradient_checkpointing=True,
)

MODEL_PRESETS: dict[str, ExecutorModelConfig] = {
    "debug": DEBUG,
    "sim": SIM,
    "wan2.1-i2v-14b-480p": WAN21_I2V_14B_480P,
    "wan2.1-i2v-14b-720p": WAN21_I2V_14B_720P,
    "ltx2-i2v": LTX2_I2V,
    "hunyuanvideo15-i2v": HUNYUANVIDEO15_I2V,
}
