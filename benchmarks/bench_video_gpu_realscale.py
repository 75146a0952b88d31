"""GPU only: one denoising step of a real-scale Wan I2V transformer (random weights).

The weights of Wan2.1-I2V are not available offline, so this measures the transformer with
the published dims of Wan2.1 1.3B (``--dims 1.3b``: 30 layers, width 1536) or 14B
(``--dims 14b``: 40 layers, width 5120), I2V input channels (36), bf16, on a 480x480 x 81
frame latent (21 x 60 x 60 -> 18,900 tokens). VAE and text encoder are not included.

    python benchmarks/bench_video_gpu_realscale.py --dims 1.3b
"""

from __future__ import annotations

import argparse
import time

import torch

DIMS = {
    "1.3b": {
        "num_attention_heads": 12,
        "attention_head_dim": 128,
        "ffn_dim": 8960,
        "num_layers": 30,
    },
    "14b": {
        "num_attention_heads": 40,
        "attention_head_dim": 128,
        "ffn_dim": 13824,
        "num_layers": 40,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", choices=sorted(DIMS), default="1.3b")
    parser.add_argument("--size-px", type=int, default=480)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA device")
    from diffusers import WanTransformer3DModel

    t0 = time.time()
    with torch.device("cuda"):
        model = (
            WanTransformer3DModel(
                patch_size=(1, 2, 2),
                in_channels=36,
                out_channels=16,
                text_dim=4096,
                freq_dim=256,
                image_dim=1280,
                cross_attn_norm=True,
                qk_norm="rms_norm_across_heads",
                **DIMS[args.dims],
            )
            .to(torch.bfloat16)
            .eval()
        )
    n = sum(p.numel() for p in model.parameters())
    t_lat, s_lat = (args.frames - 1) // 4 + 1, args.size_px // 8
    x = torch.randn(1, 36, t_lat, s_lat, s_lat, device="cuda", dtype=torch.bfloat16)
    text = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16)
    image = torch.randn(1, 257, 1280, device="cuda", dtype=torch.bfloat16)
    t = torch.tensor([500.0], device="cuda")
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        model(x, t, text, image)  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            model(x, t, text, image)
        torch.cuda.synchronize()
    step_s = (time.perf_counter() - start) / args.steps
    tokens = t_lat * (s_lat // 2) ** 2
    print(
        f"Wan {args.dims} dims ({n / 1e9:.2f} B params, bf16, random weights), "
        f"{args.frames} frames {args.size_px}^2 -> {tokens} tokens: {step_s:.3f} s per "
        f"denoising step (1 pass, no CFG), peak GPU memory "
        f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, build {time.time() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
