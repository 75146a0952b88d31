"""Train the IDM on a LeRobotDataset v3 (simulated or real teleoperation, same joint space).

    executor-idm-train --preset sim_cpu --dataset_root data/sim_v1 --output_dir outputs/idm_sim
    accelerate launch -m inverse_dynamics.train_idm --preset real_gpu --dataset_root ...

The same command scales to several GPUs/nodes through ``accelerate`` (each process draws its
own batches with a rank-dependent seed). Re-running the command resumes from the newest
complete checkpoint in ``output_dir/checkpoints`` unless ``--resume=false``.

Output layout::

    output_dir/checkpoints/step_000500/{model/, optimizer.safetensors, training_state.json,
                                        train_config.json}
    output_dir/model/          final weights + config.json (+ train_config.json)
    output_dir/metrics.jsonl   one line per log interval
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast
from safetensors.torch import load_file
from torchvision.transforms.v2.functional import gaussian_blur
from tqdm import tqdm

from executor_core.atomic_io import atomic_path
from executor_core.augment import color_jitter, random_shift
from executor_core.config_cli import (
    check_non_negative,
    check_optimization,
    check_positive,
    cli_main,
    configure_cli_logging,
    parse_config,
    require_local_dataset,
    save_config_json,
)
from executor_core.train_state import (
    CONFIG_JSON,
    latest_checkpoint,
    load_training_state,
    save_checkpoint,
)
from inverse_dynamics.configuration_idm import IDMConfig
from inverse_dynamics.dataset_idm import (
    CorrectionSampler,
    TransitionSampler,
    load_episodes,
    split_episodes,
)
from inverse_dynamics.modeling_idm import WEIGHTS_NAME, InverseDynamicsModel

logger = logging.getLogger(__name__)

TRAIN_CONFIG_NAME = CONFIG_JSON  # beside every checkpoint and model folder


@dataclass(frozen=True)
class TrainIDMConfig:
    dataset_root: Path = Path("data/sim_v1")
    # More datasets in the same joint space, used for training only: the held-out split
    # (and so the evaluation) stays defined on dataset_root alone.
    extra_dataset_roots: tuple[Path, ...] = ()
    output_dir: Path = Path("outputs/idm_sim")
    # Start from these weights and normalisation (e.g. a DAgger round on top of a checkpoint);
    # the optimizer and schedule start fresh.
    init_from: Path | None = None
    # Closed-loop corrections (executor-idm-corrections) mixed into every batch.
    corrections: tuple[Path, ...] = ()
    corrections_fraction: float = 0.5
    model: IDMConfig = field(default_factory=IDMConfig)
    image_key: str = "observation.images.scene"
    max_episodes: int | None = None  # use only the first N episodes (None = all)
    val_fraction: float = 0.1  # held-out episodes (evaluation reuses this split)
    steps: int = 6000
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    shift_px: int = 3  # random translation of the whole clip (same for all its frames)
    color_jitter: float = 0.1  # brightness/contrast jitter, so imagined videos still work
    # Imagined-style goal frames (issue 14 item 3): with this probability a sample's goal
    # frames (every input frame after the first, the camera's) get a Gaussian blur of a
    # sigma drawn from goal_blur_px (uniform, px) plus i.i.d. noise of a std drawn from
    # [0, goal_noise_std] (grey levels). The labels stay the true actions: a blur keeps the
    # pose the frame shows. 0 = off (and no extra random draws).
    goal_degrade_prob: float = 0.0
    goal_blur_px: tuple[float, float] = (0.3, 1.7)
    goal_noise_std: float = 10.0
    state_noise_std_rad: float = 0.01  # the chained state at inference is only an estimate
    log_every: int = 50
    save_every: int = 1000
    seed: int = 0
    num_threads: int = 1  # torch CPU threads per process
    resume: bool = True
    cpu: bool = False  # force CPU even when a GPU is visible
    # Wall-clock budget (minutes, summed over resumed runs): training stops and the cosine
    # schedule ends when it is spent, even before `steps` (a shared CPU runs at any speed).
    time_budget_min: float | None = None

    def __post_init__(self) -> None:
        if self.max_episodes is not None and self.max_episodes < 2:
            raise ValueError(f"max_episodes must be >= 2 or None, got {self.max_episodes!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        for name in ("steps", "batch_size", "log_every", "save_every", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        check_optimization(self)
        if self.time_budget_min is not None:
            check_positive(self, "time_budget_min")
        if not 0.0 < self.corrections_fraction < 1.0:
            raise ValueError(
                f"corrections_fraction must be in (0, 1), got {self.corrections_fraction!r}"
            )
        check_non_negative(self, "state_noise_std_rad")
        if not 0.0 <= self.goal_degrade_prob <= 1.0:
            raise ValueError(f"goal_degrade_prob must be in [0, 1], got {self.goal_degrade_prob!r}")
        low, high = self.goal_blur_px
        if not 0.0 <= low <= high <= 8.0:
            raise ValueError(
                f"goal_blur_px must be (low, high) with 0 <= low <= high <= 8, "
                f"got {self.goal_blur_px!r}"
            )
        if not 0.0 <= self.goal_noise_std <= 64.0:
            raise ValueError(f"goal_noise_std must be in [0, 64], got {self.goal_noise_std!r}")


PRESETS: dict[str, TrainIDMConfig] = {
    # Tiny and fast: for tests and smoke runs.
    "debug": TrainIDMConfig(
        output_dir=Path("outputs/idm_debug"),
        model=IDMConfig(image_size_px=32, conv_channels=(8, 16), hidden_dim=32),
        steps=2,
        batch_size=8,
        warmup_steps=0,
        log_every=1,
        save_every=1,
    ),
    # The committed sim checkpoint: one CPU thread, at most 38 min of wall clock.
    "sim_cpu": TrainIDMConfig(steps=20000, time_budget_min=38.0, log_every=100),
    "sim_cpu_flow": TrainIDMConfig(
        output_dir=Path("outputs/idm_sim_flow"),
        model=IDMConfig(head="flow"),
        steps=20000,
        time_budget_min=38.0,
        log_every=100,
    ),
    # Real robot data on GPUs: pretrained ResNet-18 from a local safetensors file.
    "real_gpu": TrainIDMConfig(
        output_dir=Path("outputs/idm_real"),
        model=IDMConfig(
            image_size_px=128,
            encoder="resnet18",
            backbone_weights_path="checkpoints/backbones/resnet18_imagenet.safetensors",
            hidden_dim=512,
            dropout=0.1,
        ),
        steps=30000,
        batch_size=128,
        learning_rate=3e-4,
        warmup_steps=1000,
        num_threads=4,
        save_every=2000,
    ),
}


def _lr_at(cfg: TrainIDMConfig, step: int, time_fraction: float = 0.0) -> float:
    """Linear warm-up then cosine decay to 5 % of the peak, over the steps or the time
    budget, whichever runs out first."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    progress = max(progress, time_fraction)
    return cfg.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def augment(
    frames_uint8: torch.Tensor,  # (B, k, 3, S, S) uint8
    cfg: TrainIDMConfig,
    generator: torch.Generator,
) -> torch.Tensor:  # (B, k, 3, S, S) float in [-1, 1]
    """Same random shift and colour change for every frame of a clip: the motion between
    frames (what the IDM reads) is untouched."""
    x = random_shift(frames_uint8.float() / 127.5 - 1.0, cfg.shift_px, generator)
    x = color_jitter(x, cfg.color_jitter, generator)
    if cfg.goal_degrade_prob > 0:
        x = degrade_goals(x, cfg, generator)
    return x


def degrade_goals(
    x: torch.Tensor,  # (B, k, 3, S, S) float in [-1, 1]
    cfg: TrainIDMConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """Imagined-style goal frames: for a ``goal_degrade_prob`` share of the samples, every
    frame after the first is blurred (one sigma per sample) and gets i.i.d. noise."""
    b = x.shape[0]
    chosen = torch.rand(b, generator=generator) < cfg.goal_degrade_prob
    low, high = cfg.goal_blur_px
    sigmas = low + (high - low) * torch.rand(b, generator=generator)
    stds = cfg.goal_noise_std * torch.rand(b, generator=generator) / 127.5
    noise = torch.randn(x[:, 1:].shape, generator=generator)
    out = x.clone()
    for i in torch.nonzero(chosen).flatten().tolist():
        goals = x[i, 1:]
        sigma = float(sigmas[i])
        if sigma > 0:
            size = 2 * math.ceil(3 * sigma) + 1
            goals = gaussian_blur(goals, [size, size], [sigma, sigma])
        out[i, 1:] = (goals + stds[i] * noise[i]).clamp(-1, 1)
    return out


@torch.no_grad()
def heldout_error_rad(
    model: InverseDynamicsModel, sampler: TransitionSampler, max_samples: int = 512
) -> dict[str, np.ndarray]:
    """Mean absolute action error per joint (rad) on held-out samples, with and without
    the joint state. Deterministic: evenly spaced samples, fixed flow noise."""
    model.eval()
    device = next(model.parameters()).device
    ids = torch.linspace(0, len(sampler) - 1, min(max_samples, len(sampler))).long()
    errors: dict[str, list[torch.Tensor]] = {"with_state": [], "without_state": []}
    gen = torch.Generator(device=device).manual_seed(0)
    for chunk in ids.split(128):
        frames, state, actions = sampler.gather(chunk)
        x = frames.to(device).float() / 127.5 - 1.0
        for key, s in (("with_state", state.to(device)), ("without_state", None)):
            pred = model.predict_actions(x, s, generator=gen)
            errors[key].append((pred.cpu() - actions).abs().flatten(0, 1))
    return {k: torch.cat(v).mean(0).numpy() for k, v in errors.items()}


@dataclass
class _Data:
    """The episodes of a run as in-memory samplers, and its split (episode indices)."""

    train: TransitionSampler
    val: TransitionSampler | None
    corrections: CorrectionSampler | None
    train_episodes: list[int]
    val_episodes: list[int]


class _Clock:
    """Wall-clock time of the run, summed over resumed runs, against the time budget."""

    def __init__(self, budget_min: float | None, elapsed_before_s: float) -> None:
        self.budget_min = budget_min
        self.elapsed_before_s = elapsed_before_s
        self.t_start = time.perf_counter()

    def elapsed_s(self) -> float:
        return self.elapsed_before_s + time.perf_counter() - self.t_start

    def fraction(self) -> float:
        return 0.0 if self.budget_min is None else self.elapsed_s() / (60 * self.budget_min)


class _LossWindow:
    """Losses and throughput since the last log line."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.samples = 0
        self.t_last = time.perf_counter()

    def add(self, loss: float, samples: int) -> None:
        self.losses.append(loss)
        self.samples += samples

    def flush(self) -> tuple[float, float]:
        """(mean loss, samples/s) since the last flush."""
        now = time.perf_counter()
        result = float(np.mean(self.losses)), self.samples / max(now - self.t_last, 1e-9)
        self.losses, self.samples, self.t_last = [], 0, now
        return result


def train(cfg: TrainIDMConfig) -> Path:
    """Run (or resume) training; returns the final model directory."""
    for root in (cfg.dataset_root, *cfg.extra_dataset_roots):
        require_local_dataset(root)  # before anything is written or lerobot tries the Hub
    torch.set_num_threads(cfg.num_threads)
    accelerator = Accelerator(cpu=cfg.cpu)
    if accelerator.is_main_process:
        save_config_json(cfg, Path(cfg.output_dir) / TRAIN_CONFIG_NAME)
    data = _load_data(cfg)
    torch.manual_seed(cfg.seed)
    model = _initial_model(cfg, data.train)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    start_step, elapsed_before_s = _resume(cfg, model, optimizer)
    model, optimizer = accelerator.prepare(model, optimizer)
    clock = _Clock(cfg.time_budget_min, elapsed_before_s)
    _train_loop(cfg, accelerator, model, optimizer, data, start_step, clock)
    return _export(cfg, accelerator, accelerator.unwrap_model(model))


def _load_data(cfg: TrainIDMConfig) -> _Data:
    """Decode the dataset(s) into memory; the held-out split is defined on dataset_root."""
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata  # heavy, only here

    meta = LeRobotDatasetMetadata("local/dataset", root=cfg.dataset_root)
    all_eps = list(range(meta.total_episodes))[: cfg.max_episodes]
    train_eps, val_eps = split_episodes(all_eps, cfg.val_fraction, cfg.seed)
    logger.info("episodes: %d train, %d held out %s", len(train_eps), len(val_eps), val_eps)
    episodes = load_episodes(cfg.dataset_root, cfg.model, all_eps, cfg.image_key)
    by_index = {e.episode_index: e for e in episodes}
    train_episodes = [by_index[i] for i in train_eps]
    for root in cfg.extra_dataset_roots:
        extra = load_episodes(root, cfg.model, None, cfg.image_key)
        logger.info("%s: %d more training episodes", root, len(extra))
        train_episodes += extra
    return _Data(
        train=TransitionSampler(train_episodes, cfg.model),
        val=TransitionSampler([by_index[i] for i in val_eps], cfg.model) if val_eps else None,
        corrections=(
            CorrectionSampler(list(cfg.corrections), cfg.model) if cfg.corrections else None
        ),
        train_episodes=train_eps,
        val_episodes=val_eps,
    )


def _initial_model(cfg: TrainIDMConfig, train_sampler: TransitionSampler) -> InverseDynamicsModel:
    """``init_from`` (its normalisation kept), or a fresh model normalised on the data."""
    if cfg.init_from is None:
        model = InverseDynamicsModel(cfg.model)
        model.set_normalization(**train_sampler.statistics())
        return model
    model = InverseDynamicsModel.from_pretrained(cfg.init_from)
    if model.config != cfg.model:
        raise ValueError(
            f"init_from {str(cfg.init_from)!r} has model config {model.config!r}, the run "
            f"asks for {cfg.model!r}"
        )
    logger.info("initialised from %s (its normalisation kept)", cfg.init_from)
    return model


def _resume(
    cfg: TrainIDMConfig, model: InverseDynamicsModel, optimizer: torch.optim.Optimizer
) -> tuple[int, float]:
    """Load the newest checkpoint (with ``resume``); returns (start step, elapsed seconds)."""
    latest = latest_checkpoint(cfg.output_dir) if cfg.resume else None
    if latest is None:
        return 0, 0.0
    model.load_state_dict(load_file(str(latest / "model" / WEIGHTS_NAME)))
    payload = load_training_state(latest, optimizer, cfg)
    logger.info("resumed from %s at step %d", latest, payload["step"])
    return int(payload["step"]), float(payload.get("elapsed_s", 0))


def _train_loop(
    cfg: TrainIDMConfig,
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: _Data,
    start_step: int,
    clock: _Clock,
) -> None:
    bar = tqdm(
        range(start_step, cfg.steps),
        initial=start_step,
        total=cfg.steps,
        disable=not accelerator.is_main_process,
        desc="idm",
        mininterval=5.0,
    )
    window = _LossWindow()
    for step in bar:
        loss = _train_step(cfg, accelerator, model, optimizer, data, step, clock)
        window.add(loss, cfg.batch_size * accelerator.num_processes)
        done = step + 1
        if done % cfg.log_every == 0 and accelerator.is_main_process:
            _log_training(cfg, bar, window, done, _lr_at(cfg, step, clock.fraction()))
        out_of_time = _out_of_time(cfg, accelerator, clock, done)
        if done % cfg.save_every == 0 or done == cfg.steps or out_of_time:
            raw_model = accelerator.unwrap_model(model)
            if data.val is not None and accelerator.is_main_process:
                _log_heldout(cfg, raw_model, data.val, done)
            _save(cfg, accelerator, raw_model, optimizer, data, done, clock)
        if out_of_time:
            break
    bar.close()


def _train_step(
    cfg: TrainIDMConfig,
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: _Data,
    step: int,
    clock: _Clock,
) -> float:
    """One optimizer step on a batch that is a function of (seed, step, rank); the loss."""
    model.train()
    gen = torch.Generator().manual_seed(
        cfg.seed * 1_000_003 + step * accelerator.num_processes + accelerator.process_index
    )
    frames, state, actions = data.train.sample(cfg.batch_size, gen)
    if data.corrections is not None:
        n = round(cfg.batch_size * cfg.corrections_fraction)
        extra = data.corrections.sample(n, gen)
        frames, state, actions = (
            torch.cat([a[: cfg.batch_size - n], b])
            for a, b in zip((frames, state, actions), extra, strict=True)
        )
    x = augment(frames, cfg, gen).to(accelerator.device)
    present = torch.rand(cfg.batch_size, generator=gen) >= cfg.model.state_dropout_prob
    state = state + cfg.state_noise_std_rad * torch.randn(state.shape, generator=gen)
    for group in optimizer.param_groups:
        group["lr"] = _lr_at(cfg, step, clock.fraction())
    # Through the (possibly DDP-wrapped) forward, so gradients are all-reduced.
    loss = model(
        x,
        state.to(accelerator.device),
        present.to(accelerator.device),
        actions.to(accelerator.device),
    )
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return float(loss.detach())


def _log_training(
    cfg: TrainIDMConfig, bar: tqdm, window: _LossWindow, done: int, lr: float
) -> None:
    loss, samples_per_s = window.flush()
    record = {"step": done, "loss": loss, "lr": lr, "samples_per_s": samples_per_s}
    bar.set_postfix(loss=f"{loss:.4f}")
    logger.info("step %d loss %.5f (%.0f samples/s)", done, loss, samples_per_s)
    _append_metrics(cfg, record)


def _log_heldout(
    cfg: TrainIDMConfig, model: InverseDynamicsModel, val: TransitionSampler, done: int
) -> None:
    err = heldout_error_rad(model, val)
    logger.info(
        "step %d held-out MAE rad with state %s, without %s",
        done,
        np.round(err["with_state"], 4),
        np.round(err["without_state"], 4),
    )
    _append_metrics(cfg, {"step": done, **{f"val_mae_rad_{k}": v.tolist() for k, v in err.items()}})


def _append_metrics(cfg: TrainIDMConfig, record: dict) -> None:
    with (Path(cfg.output_dir) / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")


def _out_of_time(cfg: TrainIDMConfig, accelerator: Accelerator, clock: _Clock, done: int) -> bool:
    """Whether the time budget is spent, checked every ``log_every`` steps. Decided on the
    main process and broadcast, so all ranks stop at the same step."""
    if cfg.time_budget_min is None or done % cfg.log_every:
        return False
    flag = torch.tensor([float(clock.fraction() >= 1.0)], device=accelerator.device)
    out_of_time = bool(broadcast(flag)[0].item())
    if out_of_time:
        logger.info("time budget of %.1f min spent at step %d", cfg.time_budget_min, done)
    return out_of_time


def _save(
    cfg: TrainIDMConfig,
    accelerator: Accelerator,
    raw_model: InverseDynamicsModel,
    optimizer: torch.optim.Optimizer,
    data: _Data,
    step: int,
    clock: _Clock,
) -> None:
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return

    def save_model(folder: Path) -> None:
        raw_model.save_pretrained(folder / "model")
        # Also beside the weights, so every model folder names its data and split.
        save_config_json(cfg, folder / "model" / TRAIN_CONFIG_NAME)

    extra = {
        "train_episodes": data.train_episodes,
        "val_episodes": data.val_episodes,
        "elapsed_s": clock.elapsed_s(),
    }
    save_checkpoint(cfg.output_dir, step, save_model, optimizer, extra, cfg)


def _export(cfg: TrainIDMConfig, accelerator: Accelerator, raw_model: InverseDynamicsModel) -> Path:
    """The final weights in ``output_dir/model``, with the run's config beside them."""
    out = Path(cfg.output_dir)
    final = out / "model"
    if accelerator.is_main_process:  # a kill mid-export leaves the previous model whole
        with atomic_path(final, directory=True) as tmp:
            raw_model.save_pretrained(tmp)
            shutil.copy(out / TRAIN_CONFIG_NAME, tmp / TRAIN_CONFIG_NAME)
    accelerator.wait_for_everyone()
    return final


@cli_main("executor-idm-train")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging("%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(TrainIDMConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    final = train(cfg)
    print(f"final IDM checkpoint: {final}")


if __name__ == "__main__":
    sys.exit(main())
