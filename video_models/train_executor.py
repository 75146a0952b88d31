"""Flow-matching trainer for the video world model (console script ``executor-train-video``).

Same command on CPU, one GPU or several (``accelerate launch``; DDP)::

    executor-train-video --preset sim --data.dataset_roots=data/sim_v1 --output_dir=outputs/demo
    accelerate launch --num_processes 2 --cpu -m video_models.train_executor \
        --preset debug --data.cache_path=...

Roles: ``--data.text_field=solution`` trains the Demonstrator, ``prompt`` the Executor.
Self-distillation: ``--init_from=checkpoints/demonstrator_sim`` starts from the
Demonstrator's weights, and ``--data.cache_path`` points at a clip cache of generated videos
(:func:`video_models.clips_executor.write_clip_cache`).

Each step: clips (B, 3, T, S, S) in [-1, 1], sigma from a shifted logit-normal, noisy video
``sigma * noise + (1 - sigma) * clip``, the transformer predicts ``noise - clip`` given the
first-frame condition and the text; MSE on the frames after the first (the first is given).
Texts are dropped (zeroed) with ``text_dropout`` so classifier-free guidance is available.

Checkpoints: ``output_dir/checkpoints/step-NNNNNN/`` with the EMA pipeline
(``save_pretrained``), the raw transformer, the optimizer as safetensors (no pickles
anywhere), ``trainer_state.json`` and the resolved config; the data order is a function of
(seed, step) so a resumed run sees the same batches it would have seen.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from executor_core.config_cli import parse_config, save_config_json
from video_models.clips_executor import (
    ClipCache,
    build_clip_cache,
    load_clip_cache,
    merge_clip_caches,
    split_episodes,
    write_clip_cache,
)
from video_models.configuration_executor import MODEL_PRESETS, ExecutorModelConfig
from video_models.pipeline_executor import ExecutorVideoPipeline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    # LeRobotDataset v3 folders (each with meta/executor_episodes.jsonl), merged in order.
    dataset_roots: tuple[Path, ...] = ()
    cache_path: Path | None = None  # clip cache (.npz); built from dataset_root if missing
    text_field: Literal["solution", "prompt"] = "solution"
    heldout_fraction: float = 0.1
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.text_field not in ("solution", "prompt"):
            raise ValueError(f"text_field must be 'solution' or 'prompt', got {self.text_field!r}")
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {self.heldout_fraction!r}")


@dataclass(frozen=True)
class TrainConfig:
    model: ExecutorModelConfig = field(default_factory=lambda: MODEL_PRESETS["sim"])
    data: DataConfig = field(default_factory=DataConfig)
    output_dir: Path = Path("outputs/executor_video")
    init_from: Path | None = None  # a saved pipeline folder (e.g. the Demonstrator)
    max_steps: int = 20000
    batch_size: int = 32  # per process
    grad_accum_steps: int = 1
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    max_grad_norm: float = 1.0
    ema_decay: float = 0.999
    text_dropout: float = 0.1
    logit_normal_std: float = 1.0
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    checkpoint_every: int = 2000
    sample_every: int = 2000
    keep_checkpoints: int = 2
    max_minutes: float = 0.0  # > 0: stop (and checkpoint) after this wall-clock time
    stop_at_step: int = 0  # > 0: checkpoint and exit at this step (a planned interruption)
    seed: int = 0
    resume: bool = True  # continue from the newest checkpoint in output_dir if there is one

    def __post_init__(self) -> None:
        for name in (
            "max_steps",
            "batch_size",
            "grad_accum_steps",
            "checkpoint_every",
            "sample_every",
            "keep_checkpoints",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.learning_rate <= 0 or self.warmup_steps < 0:
            raise ValueError(
                f"need learning_rate > 0 and warmup_steps >= 0, got "
                f"{self.learning_rate!r}, {self.warmup_steps!r}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not 0.0 <= self.text_dropout < 1.0:
            raise ValueError(f"text_dropout must be in [0, 1), got {self.text_dropout!r}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"unknown mixed_precision {self.mixed_precision!r}")


PRESETS: dict[str, TrainConfig] = {
    "debug": TrainConfig(
        model=MODEL_PRESETS["debug"],
        max_steps=2,
        batch_size=2,
        warmup_steps=0,
        checkpoint_every=1,
        sample_every=2,
        output_dir=Path("outputs/executor_video_debug"),
        data=DataConfig(heldout_fraction=0.0),
    ),
    "sim": TrainConfig(),
}


# ------------------------------------------------------------------------- flow matching
def sample_sigmas(batch: int, shift: float, std: float, generator: torch.Generator) -> torch.Tensor:
    """(B,) noise levels in (0, 1): logit-normal, then the same shift as the sampler's."""
    u = torch.sigmoid(torch.randn(batch, generator=generator) * std)
    return shift * u / (1 + (shift - 1) * u)


def flow_matching_loss(
    pipe: ExecutorVideoPipeline,
    transformer: torch.nn.Module,
    clips: torch.Tensor,
    text_embeds: torch.Tensor,
    sigmas: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    """MSE between predicted and true velocity on the imagined frames.

    clips: (B, 3, T, S, S) in [-1, 1]; text_embeds: (B, L, D); sigmas: (B,);
    noise: like the clips in the flow's space. ``transformer`` may be the DDP-wrapped
    ``pipe.transformer``.
    """
    x0 = pipe.encode_video(clips)
    condition = pipe.prepare_condition(clips[:, :, 0], clips.shape[2])
    s = sigmas.view(-1, 1, 1, 1, 1).to(x0)
    noisy = s * noise + (1 - s) * x0
    model_input = torch.cat([noisy, condition.to(noisy.dtype)], dim=1)
    pred = transformer(
        hidden_states=model_input,
        timestep=sigmas.to(x0.device) * 1000.0,
        encoder_hidden_states=text_embeds,
        return_dict=False,
    )[0]
    if pipe.config.get("prediction", "velocity") == "sample":
        # x_0-prediction with the velocity loss: (v_hat - v) = (x_0 - x0_hat) / sigma; sigma
        # clamped at 0.05 so nearly clean inputs do not dominate.
        err = ((x0.float() - pred.float()) / s.float().clamp(min=0.05)) ** 2
    else:
        err = (pred.float() - (noise - x0).float()) ** 2
    return err[:, :, 1:].mean()  # frame 0 is the given first frame


# ---------------------------------------------------------------------------------- EMA
class EMA:
    """Exponential moving average of the trainable parameters (fp32 copies)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {
            n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad
        }

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        # Warm-up of the decay so that early EMA weights are not dominated by the init.
        decay = min(self.decay, (1 + step) / (10 + step))
        for n, p in model.named_parameters():
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach().float(), 1 - decay)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        for n, p in model.named_parameters():
            if n in self.shadow:
                p.copy_(self.shadow[n].to(p.dtype))


# ------------------------------------------------------------------- optimizer state I/O
def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """An optimizer state as flat tensors + JSON (safetensors instead of a pickle)."""
    state = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, json.dumps({"param_groups": state["param_groups"], "scalars": scalars})


def optimizer_from_tensors(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: str
) -> None:
    info = json.loads(meta)
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        pid, _, name = key.partition(".")
        state.setdefault(int(pid), {})[name] = value
    for key, value in info["scalars"].items():
        pid, _, name = key.partition(".")
        state.setdefault(int(pid), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


# -------------------------------------------------------------------------------- data
def prepare_cache(cfg: TrainConfig) -> ClipCache:
    """The clip cache named in the config, built from the LeRobot dataset if missing."""
    cache_path = cfg.data.cache_path
    if cache_path is not None and Path(cache_path).is_file():
        cache = load_clip_cache(cache_path)
    else:
        if not cfg.data.dataset_roots:
            raise ValueError("set --data.dataset_roots (LeRobot datasets) or --data.cache_path")
        from video_models.modeling_executor import build_text_components
        from video_models.text_encoding import encode_text

        tokenizer, encoder = build_text_components(cfg.model)
        cache = merge_clip_caches(
            [
                build_clip_cache(
                    Path(root),
                    cfg.data.text_field,
                    cfg.model.num_frames,
                    cfg.model.frame_stride,
                    cfg.model.size_px,
                    lambda texts: encode_text(tokenizer, encoder, texts, cfg.model.max_text_tokens),
                )
                for root in cfg.data.dataset_roots
            ]
        )
        if cache_path is not None:
            write_clip_cache(cache, cache_path)
    if cache.text_field != cfg.data.text_field:
        raise ValueError(
            f"cache holds {cache.text_field!r} texts, config wants {cfg.data.text_field!r}"
        )
    expected = (cfg.model.num_frames, cfg.model.size_px, cfg.model.size_px, 3)
    if cache.frames.shape[1:] != expected:
        raise ValueError(f"cache clips are {cache.frames.shape[1:]!r}, model wants {expected!r}")
    return cache


def batch_indices(n: int, step: int, global_batch: int, seed: int) -> np.ndarray:
    """The global batch of a step: epoch-wise permutations, a pure function of (seed, step)."""
    per_epoch = max(n // global_batch, 1)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    if n < global_batch:
        perm = np.resize(perm, global_batch)
    return perm[k * global_batch : (k + 1) * global_batch]


# --------------------------------------------------------------------------- checkpoints
def _latest_checkpoint(output_dir: Path) -> Path | None:
    ckpts = sorted((output_dir / "checkpoints").glob("step-*"))
    return ckpts[-1] if ckpts else None


def _write_dir_atomically(final: Path, write: Callable[[Path], None]) -> None:
    tmp = final.parent / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def save_checkpoint(
    cfg: TrainConfig,
    pipe: ExecutorVideoPipeline,
    transformer: torch.nn.Module,
    ema: EMA,
    opt: torch.optim.Optimizer,
    step: int,
    state: dict,
) -> Path:
    final = cfg.output_dir / "checkpoints" / f"step-{step:06d}"

    def write(tmp: Path) -> None:
        raw = {n: p.detach().cpu().contiguous() for n, p in transformer.state_dict().items()}
        save_file(raw, tmp / "transformer_raw.safetensors")
        tensors, meta = optimizer_to_tensors(opt)
        save_file(tensors, tmp / "optimizer.safetensors", metadata={"meta": meta})
        save_file({n: t.contiguous() for n, t in ema.shadow.items()}, tmp / "ema.safetensors")
        export_ema_pipeline(pipe, transformer, ema, tmp / "pipeline")
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
        save_config_json(cfg, tmp / "train_config.json")

    _write_dir_atomically(final, write)
    old = sorted((cfg.output_dir / "checkpoints").glob("step-*"))[: -cfg.keep_checkpoints]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return final


def export_ema_pipeline(
    pipe: ExecutorVideoPipeline, transformer: torch.nn.Module, ema: EMA, path: Path
) -> None:
    """Save the pipeline with EMA weights, leaving the training weights untouched."""
    backup = {n: p.detach().clone() for n, p in transformer.named_parameters() if n in ema.shadow}
    ema.copy_to(transformer)
    try:
        pipe.save_pretrained(path)
    finally:
        with torch.no_grad():
            for n, p in transformer.named_parameters():
                if n in backup:
                    p.copy_(backup[n])


def write_sample_strip(frames: np.ndarray, path: Path) -> None:
    """(T, S, S, 3) uint8 -> one PNG with the frames side by side."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    strip = np.concatenate(list(frames), axis=1)
    cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))


# ------------------------------------------------------------------------------- train
def build_training_pipeline(cfg: TrainConfig) -> ExecutorVideoPipeline:
    """A fresh pipeline, or one initialised from ``init_from``; text encoder left out when the
    clip cache already holds the embeddings (the GPU machine may not have it)."""
    from video_models.modeling_executor import (
        build_pipeline,
        build_scheduler,
        build_transformer,
    )

    if cfg.init_from is not None:
        from diffusers import WanTransformer3DModel

        from video_models.pipeline_executor import check_pretrained_dir

        check_pretrained_dir(cfg.init_from)
        transformer = WanTransformer3DModel.from_pretrained(
            cfg.init_from, subfolder="transformer", use_safetensors=True, local_files_only=True
        )
    else:
        transformer = build_transformer(cfg.model, seed=cfg.seed)
    if cfg.model.text_encoder == "tiny-random":
        pipe = build_pipeline(cfg.model)
        pipe.register_modules(transformer=transformer)
        return pipe
    return ExecutorVideoPipeline(
        transformer=transformer,
        scheduler=build_scheduler(cfg.model),
        size_px=cfg.model.size_px,
        num_frames=cfg.model.num_frames,
        max_text_tokens=cfg.model.max_text_tokens,
        num_inference_steps=cfg.model.num_inference_steps,
        guidance_scale=cfg.model.guidance_scale,
        text_encoder_package="minilm" if cfg.model.text_encoder == "minilm" else None,
        prediction=cfg.model.prediction,
    )


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; returns the folder of the final EMA pipeline."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from video_models.processing_executor import clips_to_tensor

    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum_steps, mixed_precision=cfg.mixed_precision
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    cache = prepare_cache(cfg) if accelerator.is_main_process else None
    accelerator.wait_for_everyone()
    if cache is None:
        cache = prepare_cache(cfg)
    train_eps, held_eps = split_episodes(
        sorted(set(cache.episode_index.tolist())), cfg.data.heldout_fraction, cfg.data.split_seed
    )
    train_cache = cache.subset(set(train_eps))
    if len(train_cache) == 0:
        raise ValueError("no training clips after the held-out split")
    logger.info("%d training clips, %d held-out episodes", len(train_cache), len(held_eps))

    pipe = build_training_pipeline(cfg)
    pipe.to(accelerator.device)
    transformer = pipe.transformer
    transformer.train()
    params = [p for p in transformer.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.99)
    )
    ema = EMA(transformer, cfg.ema_decay)

    start_step, state = 0, {"samples_per_rank": [0] * world}
    latest = _latest_checkpoint(cfg.output_dir) if cfg.resume else None
    if latest is not None:
        transformer.load_state_dict(load_file(latest / "transformer_raw.safetensors"))
        from safetensors import safe_open

        with safe_open(latest / "optimizer.safetensors", "pt") as f:
            meta = f.metadata()["meta"]
        optimizer_from_tensors(opt, load_file(latest / "optimizer.safetensors"), meta)
        ema.shadow = {
            n: t.to(accelerator.device) for n, t in load_file(latest / "ema.safetensors").items()
        }
        state = json.loads((latest / "trainer_state.json").read_text())
        start_step = int(state["step"])
        if len(state.get("samples_per_rank", [])) != world:
            state["samples_per_rank"] = [0] * world
        logger.info("resumed from %s at step %d", latest, start_step)

    def lr_at(step: int) -> float:
        warm = min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
        progress = step / max(cfg.max_steps, 1)
        if cfg.max_minutes > 0:  # a time budget: the cosine follows whichever ends first
            progress = max(progress, (time.time() - t_start) / 60 / cfg.max_minutes)
        progress = min(progress, 1.0)
        return cfg.learning_rate * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    ddp_model, opt = accelerator.prepare(transformer, opt)
    if accelerator.is_main_process:
        save_config_json(cfg, cfg.output_dir / "train_config.json")
    # The whole (uint8) clip set lives on the device: no per-step host->device copies.
    frames_t = torch.from_numpy(train_cache.frames).to(accelerator.device)
    embeds_t = torch.from_numpy(train_cache.text_embeds).to(accelerator.device)
    text_id = torch.from_numpy(train_cache.text_id).to(accelerator.device)
    global_batch = cfg.batch_size * world
    bar = tqdm(
        range(start_step, cfg.max_steps),
        initial=start_step,
        total=cfg.max_steps,
        disable=not accelerator.is_local_main_process,
        desc="train video",
    )
    t_start, step, loss_value, my_samples = time.time(), start_step, float("nan"), 0
    noise_gen = torch.Generator(device=accelerator.device)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        for micro in range(cfg.grad_accum_steps):
            idx = batch_indices(
                len(train_cache), step * cfg.grad_accum_steps + micro, global_batch, cfg.seed
            )[rank * cfg.batch_size : (rank + 1) * cfg.batch_size]
            idx_t = torch.from_numpy(idx).to(accelerator.device)
            seed = cfg.seed * 1_000_003 + (step * cfg.grad_accum_steps + micro) * world + rank
            gen = torch.Generator().manual_seed(seed)
            clips = clips_to_tensor(frames_t[idx_t])
            emb = embeds_t[text_id[idx_t]].float()
            drop = (torch.rand(len(idx), generator=gen) < cfg.text_dropout).to(emb.device)
            emb = torch.where(drop[:, None, None], torch.zeros_like(emb), emb)
            sig = sample_sigmas(len(idx), cfg.model.flow_shift, cfg.logit_normal_std, gen)
            shape = pipe.latent_shape(len(idx), cfg.model.num_frames, cfg.model.size_px)
            noise = torch.randn(
                shape, generator=noise_gen.manual_seed(seed), device=accelerator.device
            )
            with accelerator.accumulate(ddp_model), accelerator.autocast():
                loss = flow_matching_loss(pipe, ddp_model, clips, emb, sig, noise)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                opt.step()
                opt.zero_grad(set_to_none=True)
            my_samples += len(idx)
        ema.update(transformer, step)
        loss_value = float(loss.detach())
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr_at(step):.2e}")
        done = step + 1
        out_of_time = cfg.max_minutes > 0 and (time.time() - t_start) / 60 > cfg.max_minutes
        out_of_time = out_of_time or done == cfg.stop_at_step
        # Every rank must agree to stop at the same step.
        stop = torch.tensor(float(out_of_time), device=accelerator.device)
        stop = bool(accelerator.reduce(stop, reduction="sum") > 0) if world > 1 else out_of_time
        if done % cfg.checkpoint_every == 0 or done == cfg.max_steps or stop:
            counts = accelerator.gather(torch.tensor([my_samples], device=accelerator.device))
            # DDP keeps replicas identical; a per-rank checksum in the state proves it.
            checksum = sum(p.detach().double().sum() for p in transformer.parameters())
            checksums = accelerator.gather(checksum.reshape(1).to(accelerator.device))
            my_samples = 0
            if accelerator.is_main_process:
                per_rank = [
                    a + int(b)
                    for a, b in zip(state["samples_per_rank"], counts.cpu().tolist(), strict=True)
                ]
                state = {
                    "step": done,
                    "loss": loss_value,
                    "samples_per_rank": per_rank,
                    "world_size": world,
                    "elapsed_s": time.time() - t_start,
                    "param_checksum_per_rank": checksums.cpu().tolist(),
                }
                save_checkpoint(cfg, pipe, transformer, ema, opt, done, state)
            accelerator.wait_for_everyone()
        sample_now = done % cfg.sample_every == 0 or done == cfg.max_steps or stop
        if accelerator.is_main_process and sample_now:
            _write_samples(cfg, pipe, transformer, ema, cache, held_eps or train_eps, done)
        if stop:
            logger.info("stopping early at step %d (max_minutes / stop_at_step)", done)
            break
    final = cfg.output_dir / "pipeline"
    if accelerator.is_main_process:
        _write_dir_atomically(final, lambda tmp: export_ema_pipeline(pipe, transformer, ema, tmp))
        save_config_json(cfg, final / "train_config.json")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final


@torch.no_grad()
def _write_samples(
    cfg: TrainConfig,
    pipe: ExecutorVideoPipeline,
    transformer: torch.nn.Module,
    ema: EMA,
    cache: ClipCache,
    episodes: list[int],
    step: int,
) -> None:
    """Sample one video per (up to 2) episodes with the EMA weights; PNG strips."""
    backup = {n: p.detach().clone() for n, p in transformer.named_parameters() if n in ema.shadow}
    ema.copy_to(transformer)
    transformer.eval()
    try:
        pipe.set_progress_bar_config(disable=True)
        for ep in episodes[:2]:
            row = int(np.flatnonzero(cache.episode_index == ep)[0])
            emb = torch.from_numpy(cache.text_embeds[cache.text_id[row]][None]).float()
            video = pipe(cache.frames[row, 0], prompt_embeds=emb, seed=0).frames[0]
            both = np.concatenate([cache.frames[row], video], axis=1)  # real above, imagined below
            write_sample_strip(both, cfg.output_dir / "samples" / f"step-{step:06d}-ep{ep}.png")
    finally:
        with torch.no_grad():
            for n, p in transformer.named_parameters():
                if n in backup:
                    p.copy_(backup[n])
        transformer.train()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(TrainConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    final = train(cfg)
    print(f"pipeline written to {final}")


if __name__ == "__main__":
    main()
