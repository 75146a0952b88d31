"""GPU benchmark of the real-scale backbones: LTX-2 and HunyuanVideo-1.5 (random weights).

For each backbone the transformer and VAE are built with their published dims (diffusers'
defaults for ``LTX2VideoTransformer3DModel`` / ``AutoencoderKLLTX2Video`` = LTX-2,
``HunyuanVideo15Transformer3DModel`` / ``AutoencoderKLHunyuanVideo15`` = HunyuanVideo-1.5
480p), random weights in bf16 (VAE fp32), at the preset's resolution and frame count
(``ltx2-i2v``: 512 px x 121 frames, ``hunyuanvideo15-i2v``: 480 px x 121 frames), and run
through the shared ``ExecutorVideoPipeline`` code:

* ``train_step``: time and peak GPU memory of one LoRA (rank 32) training step (flow-matching
  loss, backward, AdamW step), gradient checkpointing on, batch 1;
* ``video``: time for one video, LTX-2 8 steps (no CFG, the distilled model), HunyuanVideo-1.5
  25 steps (CFG 6: two passes per step), including the VAE decode (tiled);
* ``max_train_batch``: the largest training batch (1, 2, 4, ...) that fits in memory.

Text encoders (Gemma-3 12B, Qwen2.5-VL 7B) are not built: text states are computed once per
prompt and cached (the clip cache), so random states of the right shape stand in.

Expected against the paper's figures (per video): LTX-2 about 10.1 s, HunyuanVideo-1.5
about 112 s. The script reports ``paper_s`` beside each ``video.seconds`` and the ratio.
The paper's hardware is not stated in the issue; compare on the card named in ``device``.

    bash benchmarks/gpu_backbones.sh outputs/gpu_backbones.json      # GPU, <= 8 min
    python benchmarks/gpu_backbones.py --dry_run --out /tmp/x.json  # tiny dims on CPU
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from executor_core.atomic_io import write_bytes_atomic
from video_models.configuration_executor import MODEL_PRESETS, LoraConfigSpec
from video_models.modeling_executor import add_lora, assemble_pipeline
from video_models.train_executor import flow_matching_loss

logger = logging.getLogger(__name__)

PAPER_S_PER_VIDEO = {"ltx2-i2v": 10.1, "hunyuanvideo15-i2v": 112.0}
BUDGET_S = 8 * 60


def build_ltx2(tiny: bool) -> tuple[Any, Any, Any]:
    """(transformer, vae, connectors-free text width) of LTX-2 (tiny: test dims)."""
    from diffusers import AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel

    if tiny:
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
        vae = AutoencoderKLLTX2Video(
            latent_channels=8,
            block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 16, 32),
            layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1),
            spatial_compression_ratio=32,
            temporal_compression_ratio=8,
        )
    else:
        transformer = LTX2VideoTransformer3DModel()  # LTX-2: 48 layers, 32 x 128 heads
        vae = AutoencoderKLLTX2Video(spatial_compression_ratio=32, temporal_compression_ratio=8)
    return transformer, vae, transformer.config.caption_channels


def build_hunyuan15(tiny: bool) -> tuple[Any, Any, Any]:
    from diffusers import AutoencoderKLHunyuanVideo15, HunyuanVideo15Transformer3DModel

    if tiny:
        transformer = HunyuanVideo15Transformer3DModel(
            in_channels=9,
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
        vae = AutoencoderKLHunyuanVideo15(
            latent_channels=4, block_out_channels=(8,) * 5, layers_per_block=1
        )
    else:
        transformer = HunyuanVideo15Transformer3DModel()  # 8.3B: 54 layers, 16 x 128 heads
        vae = AutoencoderKLHunyuanVideo15()
    return transformer, vae, transformer.config.text_embed_dim


BUILDERS = {"ltx2-i2v": build_ltx2, "hunyuanvideo15-i2v": build_hunyuan15}


def make_pipe(preset: str, tiny: bool, device: torch.device, dtype: torch.dtype) -> Any:
    cfg = MODEL_PRESETS[preset]
    if tiny:
        size, frames = (64, 9) if preset == "ltx2-i2v" else (32, 5)
        cfg = replace(
            cfg,
            size_px=size,
            num_frames=frames,
            num_inference_steps=2,
            max_text_tokens=8,
            dtype="float32",
            lora=LoraConfigSpec(rank=4, alpha=4.0),
        )
    torch.manual_seed(0)
    with torch.device(device):
        transformer, vae, text_width = BUILDERS[preset](tiny)
    transformer.to(dtype)
    transformer.enable_gradient_checkpointing()
    add_lora(transformer, cfg.lora)
    for p in transformer.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    vae.to(device=device, dtype=torch.float32)
    if not tiny:
        vae.enable_tiling()
    pipe = assemble_pipeline(cfg, transformer, vae=vae)
    pipe.set_progress_bar_config(disable=True)
    return pipe, cfg, text_width


def text_states(pipe: Any, cfg: Any, batch: int, width: int, device: torch.device) -> torch.Tensor:
    """Random text states of the backbone's packed shape (real rows nonzero)."""
    rows = cfg.max_text_tokens
    if cfg.backbone == "hunyuanvideo15":
        rows += 256  # the byT5 glyph rows (zero: no quoted text)
    text = torch.zeros(batch, rows, width, device=device)
    text[:, : min(cfg.max_text_tokens, 64)] = torch.randn(
        batch, min(cfg.max_text_tokens, 64), width
    )
    return text.to(pipe.transformer.dtype)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def train_step(pipe: Any, cfg: Any, width: int, batch: int, device: torch.device) -> dict:
    """One LoRA training step at the preset's geometry: seconds and peak memory."""
    params = [p for p in pipe.transformer.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    clips = torch.rand(batch, 3, cfg.num_frames, cfg.size_px, cfg.size_px, device=device) * 2 - 1
    text = text_states(pipe, cfg, batch, width, device)
    noise = torch.randn(pipe.latent_shape(batch, cfg.num_frames, cfg.size_px), device=device)
    sigmas = torch.full((batch,), 0.7)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    t0 = time.perf_counter()
    pipe.transformer.train()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        loss = flow_matching_loss(pipe, pipe.transformer, clips, text, sigmas, noise)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    sync(device)
    out = {"batch": batch, "seconds": time.perf_counter() - t0, "loss": float(loss.detach())}
    out["peak_gib"] = peak_gib(device)
    return out


def max_train_batch(pipe: Any, cfg: Any, width: int, device: torch.device, deadline: float) -> int:
    """The largest batch (1, 2, 4, ...) whose training step fits in memory (before the
    deadline; on CPU only 1 is tried)."""
    best, batch = 0, 1
    limit = 64 if device.type == "cuda" else 1
    while batch <= limit and time.time() < deadline:
        try:
            train_step(pipe, cfg, width, batch, device)
        except torch.OutOfMemoryError:
            break
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        best, batch = batch, batch * 2
    return best


@torch.no_grad()
def one_video(pipe: Any, cfg: Any, width: int, device: torch.device) -> dict:
    """One video through the shared pipeline (all steps + VAE decode), seconds."""
    pipe.transformer.eval()
    image = np.random.default_rng(0).integers(0, 256, (cfg.size_px, cfg.size_px, 3), np.uint8)
    text = text_states(pipe, cfg, 1, width, device)
    sync(device)
    t0 = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        frames = pipe(image, prompt_embeds=text, seed=0).frames
    sync(device)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "steps": cfg.num_inference_steps,
        "guidance_scale": cfg.guidance_scale,
        "frames": list(frames.shape[1:]),
        "peak_gib": peak_gib(device),
    }


def run(presets: list[str], tiny: bool, device: torch.device) -> dict:
    deadline = time.time() + BUDGET_S
    dtype = torch.float32 if tiny else torch.bfloat16
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "dry_run": tiny,
        "torch": torch.__version__,
        "results": {},
    }
    for preset in presets:
        t_build = time.perf_counter()
        pipe, cfg, width = make_pipe(preset, tiny, device, dtype)
        entry: dict[str, Any] = {
            "size_px": cfg.size_px,
            "num_frames": cfg.num_frames,
            "latent_shape": list(pipe.latent_shape(1, cfg.num_frames, cfg.size_px)),
            "transformer_params_b": sum(p.numel() for p in pipe.transformer.parameters()) / 1e9,
            "build_s": time.perf_counter() - t_build,
        }
        entry["train_step"] = train_step(pipe, cfg, width, 1, device)
        video = one_video(pipe, cfg, width, device)
        paper = PAPER_S_PER_VIDEO[preset]
        entry["video"] = {**video, "paper_s": paper, "ratio_to_paper": video["seconds"] / paper}
        entry["max_train_batch"] = max_train_batch(pipe, cfg, width, device, deadline)
        report["results"][preset] = entry
        logger.info("%s: %s", preset, json.dumps(entry))
        del pipe
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--dry_run", action="store_true", help="tiny dims, CPU, seconds")
    parser.add_argument("--presets", nargs="+", default=list(PAPER_S_PER_VIDEO))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    unknown = [p for p in args.presets if p not in PAPER_S_PER_VIDEO]
    if unknown:
        print(f"unknown presets {unknown!r}; known: {list(PAPER_S_PER_VIDEO)}", file=sys.stderr)
        return 2
    if not args.dry_run and not torch.cuda.is_available():
        print("needs a CUDA device (or --dry_run)", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    report = run(args.presets, args.dry_run, device)
    text = json.dumps(report, indent=2)
    print(text)
    write_bytes_atomic(args.out, (text + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
