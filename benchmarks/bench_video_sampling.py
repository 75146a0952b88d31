"""Speed and memory of the video world model: sampling one video, training steps/s.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_video_sampling.py --threads 2
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_video_sampling.py --pipeline \
        checkpoints/demonstrator_sim           # the committed weights (same speed)
    python benchmarks/bench_video_sampling.py --device cuda   # the same on a GPU
    # another shape of the sim preset (issue 14 item 4: what a cheaper or finer one costs)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_video_sampling.py --patch 4x8x8 --heads 4
(real-scale dims on a GPU: benchmarks/bench_video_gpu_realscale.py)

Targets (issue 5): one 16-frame 64 px video in < 2 s on 2 CPU threads with the default
step count. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from dataclasses import replace

import numpy as np
import torch

from video_models.configuration_executor import MODEL_PRESETS
from video_models.modeling_executor import build_pipeline
from video_models.pipeline_executor import ExecutorVideoPipeline
from video_models.train_executor import flow_matching_loss, sample_sigmas


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_sampling(pipe, device: str, repeats: int, steps: int | None) -> list[float]:
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    prompt = "put the red cube in the bowl"
    pipe(image, prompt, seed=0, num_inference_steps=steps)  # warm-up
    times = []
    for i in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        pipe(image, prompt, seed=i, num_inference_steps=steps)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return times


def bench_training(pipe, batch: int, iters: int, device: str) -> float:
    cfg = pipe.config
    transformer = pipe.transformer.train()
    opt = torch.optim.AdamW(transformer.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    clips = torch.rand(batch, 3, cfg.num_frames, cfg.size_px, cfg.size_px, device=device) * 2 - 1
    text_dim = transformer.config.text_dim
    emb = torch.randn(batch, cfg.max_text_tokens, text_dim, device=device)
    shape = pipe.latent_shape(batch, cfg.num_frames, cfg.size_px)
    times = []
    for _ in range(iters + 1):
        t = time.perf_counter()
        sig = sample_sigmas(batch, 3.0, 1.0, gen)
        noise = torch.randn(shape, device=device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = flow_matching_loss(pipe, transformer, clips, emb, sig, noise)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    transformer.eval()
    return 1.0 / statistics.median(times[1:])


def patch_size(text: str) -> tuple[int, int, int]:
    """ "2x8x8" -> (2, 8, 8)."""
    try:
        sizes = tuple(int(v) for v in text.split("x"))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--patch must be TxHxW positive sizes, got {text!r}")
    return sizes  # type: ignore[return-value]


def preset_with(name: str, patch: tuple[int, int, int] | None, heads: int | None):
    """The preset with another patch size and/or number of attention heads (the width is
    heads x the preset's head dim); its __post_init__ checks the shape."""
    cfg = MODEL_PRESETS[name]
    transformer = cfg.transformer
    if patch is not None:
        transformer = replace(transformer, patch_size=patch)
    if heads is not None:
        transformer = replace(transformer, num_attention_heads=heads)
    return replace(cfg, transformer=transformer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="", help="saved pipeline (default: fresh sim)")
    parser.add_argument("--preset", default="sim")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-iters", type=int, default=5)
    parser.add_argument("--patch", type=patch_size, default=None, help="TxHxW, fresh model only")
    parser.add_argument("--heads", type=int, default=None, help="attention heads, fresh only")
    args = parser.parse_args()
    if args.pipeline and (args.patch or args.heads):
        parser.error("--patch and --heads shape a fresh model, not a saved --pipeline")
    torch.set_num_threads(args.threads)

    if args.pipeline:
        pipe = ExecutorVideoPipeline.from_pretrained(args.pipeline)
    else:
        try:
            pipe = build_pipeline(preset_with(args.preset, args.patch, args.heads))
        except ValueError as err:
            parser.error(str(err))
    pipe.set_progress_bar_config(disable=True)
    pipe.to(args.device)
    cfg = pipe.config
    n_params = sum(p.numel() for p in pipe.transformer.parameters())
    steps = args.steps or cfg.num_inference_steps
    tcfg = pipe.transformer.config
    width = tcfg.num_attention_heads * tcfg.attention_head_dim
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = bench_sampling(pipe, args.device, args.repeats, args.steps)
    print(
        f"model: {n_params / 1e6:.2f} M transformer params, patch "
        f"{'x'.join(str(p) for p in tcfg.patch_size)}, width {width}, "
        f"{cfg.num_frames} frames x "
        f"{cfg.size_px}^2 px, {steps} steps, guidance {cfg.guidance_scale}, {args.device}, "
        f"{args.threads} threads"
    )
    print(
        f"sampling one video: median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}, n={len(times)})"
    )
    sps = bench_training(pipe, args.train_batch, args.train_iters, args.device)
    print(
        f"training: {sps:.2f} steps/s at batch {args.train_batch} "
        f"({sps * args.train_batch:.1f} clips/s)"
    )
    print(f"peak host memory (RSS): {peak_rss_mib():.0f} MiB")
    if args.device == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
