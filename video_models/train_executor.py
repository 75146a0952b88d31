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

Checkpoints (the format of :mod:`executor_core.train_state`):
``output_dir/checkpoints/step_NNNNNN/`` with the EMA pipeline (``pipeline/``), the raw
transformer and the EMA weights, the optimizer as safetensors (no pickles anywhere),
``training_state.json`` and the resolved config; the data order is a function of
(seed, step) so a resumed run sees the same batches it would have seen.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from accelerate import Accelerator
from diffusers import WanTransformer3DModel
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from executor_core.atomic_io import atomic_path, write_bytes_atomic
from executor_core.config_cli import cli_main, configure_cli_logging, parse_config, save_config_json
from executor_core.train_state import (
    CONFIG_JSON,
    latest_checkpoint,
    load_training_state,
    save_checkpoint,
)
from video_models.clips_executor import (
    ClipCache,
    cache_source,
    clip_cache_for_model,
    load_clip_cache,
    source_differences,
    split_episodes,
    write_clip_cache,
)
from video_models.configuration_executor import MODEL_PRESETS, ExecutorModelConfig
from video_models.modeling_executor import (
    assemble_pipeline,
    build_text_components,
    build_transformer,
    load_pretrained_pipeline,
    save_lora,
)
from video_models.pipeline_executor import ExecutorVideoPipeline, check_pretrained_dir
from video_models.processing_executor import clips_to_tensor

logger = logging.getLogger(__name__)

RAW_WEIGHTS = "transformer_raw.safetensors"  # the training weights, in a checkpoint
EMA_WEIGHTS = "ema.safetensors"


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
    # A saved pipeline folder (e.g. the Demonstrator); for the real-scale (LoRA) presets the
    # folder of a saved adapter (the Demonstrator's ``pipeline/``), applied to the base.
    init_from: Path | None = None
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
    # > 0: stop (and checkpoint) once the run has trained this long, counted across resumes
    # (a checkpoint keeps the time so far), and end the cosine there if it comes first
    max_minutes: float = 0.0
    stop_at_step: int = 0  # > 0: checkpoint and exit at this step (a planned interruption)
    seed: int = 0
    resume: bool = True  # continue from the newest checkpoint in output_dir if there is one
    # Shard the frozen base transformer over the processes with FSDP2 (torch fully_shard,
    # per transformer block); the LoRA adapter stays replicated and its gradients are
    # all-reduced. For the 14B-class LoRA presets on several GPUs (docs/scale_out.md).
    fsdp: bool = False
    # false: the frames past each clip's ``valid_frames`` in the clip cache (the world held
    # still once the motion is done, or padding) are left out of the loss
    loss_on_still_frames: bool = True

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
        for name in ("learning_rate", "weight_decay", "max_grad_norm", "logit_normal_std"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)!r}")
        if self.weight_decay < 0 or self.max_grad_norm <= 0 or self.logit_normal_std <= 0:
            raise ValueError(
                f"need weight_decay >= 0, max_grad_norm > 0, logit_normal_std > 0; got "
                f"{self.weight_decay!r}, {self.max_grad_norm!r}, {self.logit_normal_std!r}"
            )
        if not 0.0 <= self.max_minutes < math.inf:
            raise ValueError(f"max_minutes must be >= 0 and finite, got {self.max_minutes!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not 0.0 <= self.text_dropout < 1.0:
            raise ValueError(f"text_dropout must be in [0, 1), got {self.text_dropout!r}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"unknown mixed_precision {self.mixed_precision!r}")
        if self.fsdp and (self.model.space != "latent" or self.model.lora.rank == 0):
            raise ValueError(
                f"fsdp=true shards a pretrained base under a LoRA adapter; model "
                f"{self.model.name!r} is not a real-scale LoRA preset"
            )


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
# Real scale (GPU): LoRA on a local base folder, bf16, batch 1 per process, the clip cache
# holding the backbone's own text states. Add --fsdp=true on several GPUs (docs/scale_out.md).
for _name in ("ltx2-i2v", "hunyuanvideo15-i2v", "wan2.1-i2v-14b-480p"):
    PRESETS[_name] = TrainConfig(
        model=MODEL_PRESETS[_name],
        output_dir=Path(f"outputs/executor_video_{_name}"),
        max_steps=2000,
        batch_size=1,
        learning_rate=1e-4,
        warmup_steps=50,
        mixed_precision="bf16",
        checkpoint_every=250,
        sample_every=250,
    )


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
    valid_frames: torch.Tensor | None = None,
) -> torch.Tensor:
    """MSE between predicted and true velocity on the imagined frames.

    clips: (B, 3, T, S, S) in [-1, 1]; text_embeds: (B, L, D); sigmas: (B,);
    noise: like the clips in the flow's space. ``transformer`` may be the DDP-wrapped
    ``pipe.transformer``. ``valid_frames`` (B,): each clip's real leading frames; the flow
    frames past them (still or padding, in the flow's own frame count) are left out of the mean.
    """
    x0 = pipe.encode_video(clips)
    condition = pipe.prepare_condition(clips[:, :, 0], clips.shape[2])
    s = sigmas.view(-1, 1, 1, 1, 1).to(x0)
    noisy = s * noise + (1 - s) * x0
    timestep = sigmas.to(x0.device) * 1000.0
    pred = pipe.backbone_forward(transformer, noisy, condition, timestep, text_embeds)
    if pipe.config.get("prediction", "velocity") == "sample":
        # x_0-prediction with the velocity loss: (v_hat - v) = (x_0 - x0_hat) / sigma; sigma
        # clamped at 0.05 so nearly clean inputs do not dominate.
        err = ((x0.float() - pred.float()) / s.float().clamp(min=0.05)) ** 2
    else:
        err = (pred.float() - (noise - x0).float()) ** 2
    err = err[:, :, 1:]  # frame 0 is the given first frame
    if valid_frames is None:
        return err.mean()
    mask = valid_frame_mask(valid_frames.to(err.device), clips.shape[2], x0.shape[2])[:, 1:]
    per_frame = err.mean(dim=(1, 3, 4))  # (B, T' - 1)
    return (per_frame * mask).sum() / mask.sum().clamp(min=1.0)


def valid_frame_mask(valid_frames: torch.Tensor, num_frames: int, flow_frames: int) -> torch.Tensor:
    """(B, flow_frames) float: 1 for a flow frame that holds a real clip frame. A latent
    frame that compresses several clip frames counts as real when its first one is."""
    per_flow = num_frames / flow_frames
    first = torch.arange(flow_frames, device=valid_frames.device) * per_flow
    return (first[None, :] < valid_frames[:, None].float()).float()


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

    @contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """The EMA weights in ``model`` inside the block, the training weights again after."""
        backup = {n: p.detach().clone() for n, p in model.named_parameters() if n in self.shadow}
        self.copy_to(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if n in backup:
                        p.copy_(backup[n])


def uses_lora(transformer: torch.nn.Module) -> bool:
    """True for a real-scale transformer trained through a peft LoRA adapter."""
    return bool(getattr(transformer, "peft_config", None))


def export_ema_pipeline(
    pipe: ExecutorVideoPipeline,
    transformer: torch.nn.Module,
    ema: EMA,
    path: Path,
    model: ExecutorModelConfig | None = None,
) -> None:
    """Save the pipeline with EMA weights, leaving the training weights untouched; a LoRA
    run saves its adapter only (``modeling_executor.save_lora``: the base stays where it is)."""
    with ema.applied(transformer):
        if uses_lora(transformer) and model is not None:
            save_lora(transformer, path, model)
        else:
            pipe.save_pretrained(path)


# -------------------------------------------------------------------------------- data
def prepare_cache(cfg: TrainConfig) -> ClipCache:
    """The clip cache named in the config, built from the LeRobot dataset(s) if missing."""
    cache_path = cfg.data.cache_path
    if cache_path is not None and Path(cache_path).is_file():
        cache = load_clip_cache(cache_path)
        _check_cache_source(cfg, cache)
    else:
        if not cfg.data.dataset_roots:
            raise ValueError("set --data.dataset_roots (LeRobot datasets) or --data.cache_path")
        cache = clip_cache_for_model(cfg.data.dataset_roots, cfg.data.text_field, cfg.model)
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


def _check_cache_source(cfg: TrainConfig, cache: ClipCache) -> None:
    """Refuse a cache built from other datasets (when the config names its own), at another
    frame stride or with another text encoder than the config's: training would use it
    silently. Caches that record no source (packed or merged by hand) are not checked."""
    keys = ["frame_stride", "text_encoder", "text_dim", "max_text_tokens"]
    if cfg.data.dataset_roots:
        keys.insert(0, "dataset_roots")
    wanted = cache_source(cfg.data.dataset_roots, cfg.data.text_field, cfg.model)
    diffs = source_differences(cache, wanted, keys)
    if diffs:
        raise ValueError(
            f"clip cache {str(cfg.data.cache_path)!r} was built from other data or for "
            f"another model ({'; '.join(diffs)}); delete it to build it again, or name "
            f"another --data.cache_path"
        )


def batch_indices(n: int, step: int, global_batch: int, seed: int) -> np.ndarray:
    """The global batch of a step: epoch-wise permutations, a pure function of (seed, step)."""
    per_epoch = max(n // global_batch, 1)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    if n < global_batch:
        perm = np.resize(perm, global_batch)
    return perm[k * global_batch : (k + 1) * global_batch]


def write_sample_strip(frames: np.ndarray, path: Path) -> None:
    """(T, S, S, 3) uint8 -> one PNG with the frames side by side."""
    import cv2

    strip = np.concatenate(list(frames), axis=1)
    ok, png = cv2.imencode(".png", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode a {strip.shape!r} strip as PNG for {path}")
    write_bytes_atomic(path, png.tobytes())


# ------------------------------------------------------------------------------- train
def build_training_pipeline(cfg: TrainConfig) -> ExecutorVideoPipeline:
    """A fresh pipeline, or one initialised from ``init_from``; text encoder left out when the
    clip cache already holds the embeddings (the GPU machine may not have it). Real-scale
    presets: the local base folder with a LoRA adapter (``init_from``'s, else a fresh one),
    trainable LoRA weights in float32."""
    if cfg.model.space == "latent":
        model = replace(cfg.model, cpu_offload=False)  # training keeps it on the device
        pipe = load_pretrained_pipeline(
            model, lora_path=cfg.init_from, with_text_encoder=False, seed=cfg.seed
        )
        for param in pipe.transformer.parameters():
            if param.requires_grad:
                param.data = param.data.float()
        return pipe
    if cfg.init_from is not None:
        check_pretrained_dir(cfg.init_from)
        transformer = WanTransformer3DModel.from_pretrained(
            cfg.init_from, subfolder="transformer", use_safetensors=True, local_files_only=True
        )
    else:
        transformer = build_transformer(cfg.model, seed=cfg.seed)
    if cfg.model.text_encoder != "tiny-random":
        return assemble_pipeline(cfg.model, transformer)
    tokenizer, text_encoder = build_text_components(cfg.model)
    return assemble_pipeline(cfg.model, transformer, text_encoder=text_encoder, tokenizer=tokenizer)


@dataclass
class _Run:
    """What the training loop works on."""

    cfg: TrainConfig
    accelerator: Accelerator
    pipe: ExecutorVideoPipeline
    model: torch.nn.Module  # pipe.transformer, DDP-wrapped once prepared
    opt: torch.optim.Optimizer
    ema: EMA
    params: list[torch.nn.Parameter]

    @property
    def transformer(self) -> torch.nn.Module:
        return self.pipe.transformer


@dataclass
class _DeviceClips:
    """The (uint8) training clips: on the device for the pixel presets (no per-step copies),
    in host memory at real scale."""

    frames: torch.Tensor  # (N, T, S, S, 3) uint8
    embeds: torch.Tensor  # (U, L, D)
    text_id: torch.Tensor  # (N,)
    valid_frames: torch.Tensor | None  # (N,) real leading frames; None: the loss sees all

    @classmethod
    def of(cls, cache: ClipCache, device: torch.device, loss_on_still_frames: bool) -> _DeviceClips:
        valid = None if loss_on_still_frames else torch.from_numpy(cache.motion_frames()).to(device)
        return cls(
            torch.from_numpy(cache.frames).to(device),
            torch.from_numpy(cache.text_embeds).to(device),
            torch.from_numpy(cache.text_id).to(device),
            valid,
        )

    def __len__(self) -> int:
        return int(self.frames.shape[0])


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; returns the folder of the final EMA pipeline."""
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum_steps, mixed_precision=cfg.mixed_precision
    )
    with accelerator.main_process_first():  # the main process builds and writes the cache
        cache = prepare_cache(cfg)
    train_cache, sample_episodes = _training_clips(cfg, cache)
    run = _setup(cfg, accelerator)
    resumed = _resume(run)
    if cfg.fsdp:  # sharded in _setup; accelerate only launches and steps the optimizer
        run.opt = accelerator.prepare(run.opt)
    else:
        run.model, run.opt = accelerator.prepare(run.model, run.opt)
    if accelerator.is_main_process:
        save_config_json(cfg, cfg.output_dir / CONFIG_JSON)
    # Pixel presets keep the (small) clips on the device; real-scale clips (121 frames at
    # 480-512 px, ~90 MB each) stay in host memory and go over one batch at a time.
    clips_device = accelerator.device if cfg.model.space == "pixel" else torch.device("cpu")
    clips = _DeviceClips.of(train_cache, clips_device, cfg.loss_on_still_frames)
    _train_loop(run, clips, resumed, cache, sample_episodes)
    final = _export(run)
    accelerator.end_training()
    return final


def _training_clips(cfg: TrainConfig, cache: ClipCache) -> tuple[ClipCache, list[int]]:
    """The clips of the training episodes, and the episodes the sample strips show (the
    held-out ones if there are any)."""
    train_eps, held_eps = split_episodes(
        sorted(set(cache.episode_index.tolist())), cfg.data.heldout_fraction, cfg.data.split_seed
    )
    train_cache = cache.subset(set(train_eps))
    if len(train_cache) == 0:
        raise ValueError("no training clips after the held-out split")
    if not cfg.loss_on_still_frames:
        if cache.valid_frames is None:
            raise ValueError(
                f"loss_on_still_frames=false needs a clip cache that marks each clip's "
                f"frames of motion "
                f"(valid_frames); {str(cfg.data.cache_path)!r} does not (a dataset cache "
                f"written before caches marked them: delete it and it is built again)"
            )
        counted = train_cache.motion_frames()
        logger.info(
            "still frames left out of the loss: %.1f %% of the clip frames are in it",
            100.0 * counted.sum() / (len(train_cache) * cache.frames.shape[1]),
        )
    logger.info("%d training clips, %d held-out episodes", len(train_cache), len(held_eps))
    return train_cache, held_eps or train_eps


def _setup(cfg: TrainConfig, accelerator: Accelerator) -> _Run:
    """Pipeline on the device, optimizer over the trainable weights, their EMA."""
    pipe = build_training_pipeline(cfg)
    pipe.to(accelerator.device)
    transformer = pipe.transformer
    if cfg.fsdp:
        shard_frozen_base(transformer, accelerator.device)
    transformer.train()
    params = [p for p in transformer.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.99)
    )
    return _Run(cfg, accelerator, pipe, transformer, opt, EMA(transformer, cfg.ema_decay), params)


def shard_frozen_base(transformer: torch.nn.Module, device: torch.device) -> None:
    """FSDP2 over all processes: each transformer block, then the whole model, keeps 1/N of
    the frozen base weights (gathered per block in forward/backward); the trainable LoRA
    weights are left out (replicated, see :func:`all_reduce_grads`)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    trainable = {p for p in transformer.parameters() if p.requires_grad}
    blocks = getattr(transformer, "transformer_blocks", None) or transformer.blocks
    for block in blocks:
        fully_shard(block, mesh=mesh, ignored_params=trainable)
    fully_shard(transformer, mesh=mesh, ignored_params=trainable)


def all_reduce_grads(params: list[torch.nn.Parameter], world: int) -> None:
    """Average the replicated (LoRA) gradients over the processes (what DDP would do)."""
    import torch.distributed as dist

    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world)


@dataclass(frozen=True)
class _Resumed:
    """Where a run starts: its step, the samples each rank has seen and the seconds it has
    trained (0 for a new run)."""

    step: int
    samples_per_rank: list[int]
    elapsed_s: float


def _resume(run: _Run) -> _Resumed:
    """Weights, optimizer and EMA of the newest checkpoint (with ``resume``); returns where
    the run goes on from."""
    world = run.accelerator.num_processes
    latest = latest_checkpoint(run.cfg.output_dir) if run.cfg.resume else None
    if latest is None:
        return _Resumed(0, [0] * world, 0.0)
    raw = load_file(latest / RAW_WEIGHTS)
    if uses_lora(run.transformer):  # the adapter only: every saved tensor must find its place
        missing = set(raw) - set(run.transformer.state_dict())
        if missing:
            raise ValueError(f"checkpoint tensors {sorted(missing)[:3]!r} are not in the model")
        run.transformer.load_state_dict(raw, strict=False)
    else:
        run.transformer.load_state_dict(raw)
    state = load_training_state(latest, run.opt, run.cfg)
    run.ema.shadow = {
        n: t.to(run.accelerator.device) for n, t in load_file(latest / EMA_WEIGHTS).items()
    }
    samples_per_rank = state.get("samples_per_rank", [])
    if len(samples_per_rank) != world:
        samples_per_rank = [0] * world
    elapsed_s = float(state.get("elapsed_s", 0.0))
    logger.info("resumed from %s at step %d (%.0f s trained)", latest, state["step"], elapsed_s)
    return _Resumed(int(state["step"]), samples_per_rank, elapsed_s)


def _train_loop(
    run: _Run,
    clips: _DeviceClips,
    resumed: _Resumed,
    cache: ClipCache,
    sample_episodes: list[int],
) -> None:
    cfg, accelerator = run.cfg, run.accelerator
    samples_per_rank = resumed.samples_per_rank
    bar = tqdm(
        range(resumed.step, cfg.max_steps),
        initial=resumed.step,
        total=cfg.max_steps,
        disable=not accelerator.is_local_main_process,
        desc="train video",
        mininterval=5.0,  # a log file, not a terminal, on the GPU machine
    )
    # the clock of the whole run: a resumed run goes on with the time it has trained, so
    # that max_minutes and the cosine that follows it do not start over
    t_start, my_samples = time.time() - resumed.elapsed_s, 0
    noise_gen = torch.Generator(device=accelerator.device)
    for step in bar:
        for g in run.opt.param_groups:
            g["lr"] = _lr_at(cfg, step, t_start)
        for micro in range(cfg.grad_accum_steps):
            loss, n = _micro_step(run, clips, step * cfg.grad_accum_steps + micro, noise_gen)
            my_samples += n
        run.ema.update(run.transformer, step)
        loss_value = float(loss.detach())
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{_lr_at(cfg, step, t_start):.2e}")
        done = step + 1
        stop = _should_stop(cfg, accelerator, done, t_start)
        if done % cfg.checkpoint_every == 0 or done == cfg.max_steps or stop:
            samples_per_rank = _checkpoint(
                run, done, loss_value, my_samples, samples_per_rank, t_start
            )
            my_samples = 0
        sample_now = done % cfg.sample_every == 0 or done == cfg.max_steps or stop
        # A sharded model samples on every process (each forward gathers the shards).
        if (accelerator.is_main_process or cfg.fsdp) and sample_now:
            write = accelerator.is_main_process
            _write_samples(
                cfg, run.pipe, run.transformer, run.ema, cache, sample_episodes, done, write
            )
        if stop:
            logger.info("stopping early at step %d (max_minutes / stop_at_step)", done)
            break


def _lr_at(cfg: TrainConfig, step: int, t_start: float) -> float:
    """Linear warm-up, then cosine to 10 % over the steps or ``max_minutes``, whichever ends
    first."""
    warm = min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
    progress = step / max(cfg.max_steps, 1)
    if cfg.max_minutes > 0:  # a time budget: the cosine follows whichever ends first
        progress = max(progress, (time.time() - t_start) / 60 / cfg.max_minutes)
    progress = min(progress, 1.0)
    return cfg.learning_rate * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _micro_step(
    run: _Run, clips: _DeviceClips, micro_step: int, noise_gen: torch.Generator
) -> tuple[torch.Tensor, int]:
    """Forward and backward of one micro-batch, a pure function of (seed, micro step, rank);
    the optimizer steps once the gradients are accumulated. Returns (loss, clips used)."""
    cfg, accelerator = run.cfg, run.accelerator
    rank, world = accelerator.process_index, accelerator.num_processes
    idx = batch_indices(len(clips), micro_step, cfg.batch_size * world, cfg.seed)[
        rank * cfg.batch_size : (rank + 1) * cfg.batch_size
    ]
    idx_t = torch.from_numpy(idx).to(clips.frames.device)
    seed = cfg.seed * 1_000_003 + micro_step * world + rank
    gen = torch.Generator().manual_seed(seed)
    batch = clips_to_tensor(clips.frames[idx_t].to(accelerator.device))
    emb = clips.embeds[clips.text_id[idx_t]].float().to(accelerator.device)
    drop = (torch.rand(len(idx), generator=gen) < cfg.text_dropout).to(emb.device)
    emb = torch.where(drop[:, None, None], torch.zeros_like(emb), emb)
    sig = sample_sigmas(len(idx), cfg.model.flow_shift, cfg.logit_normal_std, gen)
    shape = run.pipe.latent_shape(len(idx), cfg.model.num_frames, cfg.model.size_px)
    noise = torch.randn(shape, generator=noise_gen.manual_seed(seed), device=accelerator.device)
    with accelerator.accumulate(run.model), accelerator.autocast():
        valid = None if clips.valid_frames is None else clips.valid_frames[idx_t]
        loss = flow_matching_loss(run.pipe, run.model, batch, emb, sig, noise, valid)
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            if cfg.fsdp and accelerator.num_processes > 1:
                all_reduce_grads(run.params, accelerator.num_processes)
            accelerator.clip_grad_norm_(run.params, cfg.max_grad_norm)
        run.opt.step()
        run.opt.zero_grad(set_to_none=True)
    return loss, len(idx)


def _should_stop(cfg: TrainConfig, accelerator: Accelerator, done: int, t_start: float) -> bool:
    """``max_minutes`` spent or ``stop_at_step`` reached; every rank must agree to stop at
    the same step."""
    out_of_time = cfg.max_minutes > 0 and (time.time() - t_start) / 60 > cfg.max_minutes
    out_of_time = out_of_time or done == cfg.stop_at_step
    stop = torch.tensor(float(out_of_time), device=accelerator.device)
    if accelerator.num_processes == 1:
        return out_of_time
    return bool(accelerator.reduce(stop, reduction="sum") > 0)


def _checkpoint(
    run: _Run,
    done: int,
    loss_value: float,
    my_samples: int,
    samples_per_rank: list[int],
    t_start: float,
) -> list[int]:
    """Save ``checkpoints/step_{done}`` (main process; every rank takes part in the
    gathers); returns the updated samples per rank."""
    accelerator = run.accelerator
    counts = accelerator.gather(torch.tensor([my_samples], device=accelerator.device))
    # DDP keeps replicas identical; a per-rank checksum in the state proves it (FSDP: of the
    # replicated trainable weights, the base is sharded by design).
    replicated = run.params if run.cfg.fsdp else run.transformer.parameters()
    checksum = sum(p.detach().double().sum() for p in replicated)
    checksums = accelerator.gather(checksum.reshape(1).to(accelerator.device))
    held = accelerator.gather(torch.tensor([_held_base_fraction(run)], device=accelerator.device))
    samples_per_rank = [
        a + int(b) for a, b in zip(samples_per_rank, counts.cpu().tolist(), strict=True)
    ]
    if accelerator.is_main_process:
        extra = {
            "loss": loss_value,
            "samples_per_rank": samples_per_rank,
            "world_size": accelerator.num_processes,
            "elapsed_s": time.time() - t_start,
            "param_checksum_per_rank": checksums.cpu().tolist(),
            "fsdp": run.cfg.fsdp,
            "held_base_fraction_per_rank": held.cpu().tolist(),
        }
        save_checkpoint(
            run.cfg.output_dir,
            done,
            lambda folder: _save_weights(run, folder),
            run.opt,
            extra,
            run.cfg,
            keep=run.cfg.keep_checkpoints,
        )
    accelerator.wait_for_everyone()
    return samples_per_rank


def _held_base_fraction(run: _Run) -> float:
    """The share of the frozen base weights this process holds (1.0 unless sharded)."""
    from torch.distributed.tensor import DTensor

    frozen = [p for p in run.transformer.parameters() if not p.requires_grad]
    total = sum(p.numel() for p in frozen)
    local = sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in frozen)
    return local / total if total else 1.0


def _save_weights(run: _Run, folder: Path) -> None:
    """The training and EMA weights (to resume), and the EMA pipeline (to use)."""
    raw = {n: p.detach().cpu().contiguous() for n, p in run.transformer.state_dict().items()}
    if uses_lora(run.transformer):  # the frozen base is not copied into every checkpoint
        raw = {n: t for n, t in raw.items() if n in run.ema.shadow}
    save_file(raw, folder / RAW_WEIGHTS)
    save_file({n: t.contiguous() for n, t in run.ema.shadow.items()}, folder / EMA_WEIGHTS)
    export_ema_pipeline(run.pipe, run.transformer, run.ema, folder / "pipeline", run.cfg.model)


def _export(run: _Run) -> Path:
    """The final EMA pipeline in ``output_dir/pipeline``, with the run's config."""
    final = run.cfg.output_dir / "pipeline"
    if run.accelerator.is_main_process:
        with atomic_path(final, directory=True) as tmp:
            export_ema_pipeline(run.pipe, run.transformer, run.ema, tmp, run.cfg.model)
            save_config_json(run.cfg, tmp / CONFIG_JSON)
    run.accelerator.wait_for_everyone()
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
    write: bool = True,
) -> None:
    """Sample one video per (up to 2) episodes with the EMA weights; PNG strips (written
    when ``write``)."""
    with ema.applied(transformer):
        transformer.eval()
        try:
            pipe.set_progress_bar_config(disable=True)
            for ep in episodes[:2]:
                row = int(np.flatnonzero(cache.episode_index == ep)[0])
                emb = torch.from_numpy(cache.text_embeds[cache.text_id[row]][None]).float()
                video = pipe(cache.frames[row, 0], prompt_embeds=emb, seed=0).frames[0]
                both = np.concatenate([cache.frames[row], video], axis=1)  # real above, imagined
                if write:
                    path = cfg.output_dir / "samples" / f"step-{step:06d}-ep{ep}.png"
                    write_sample_strip(both, path)
        finally:
            transformer.train()


@cli_main("executor-train-video")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging("%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(TrainConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    final = train(cfg)
    print(f"pipeline written to {final}")


if __name__ == "__main__":
    sys.exit(main())
