"""``executor-grpo``: RL from judge feedback for the Executor (Flow-GRPO / DanceGRPO style).

Each step:

1. pick ``prompts_per_step`` items (a pure function of (seed, step), so a resumed run sees
   the items it would have seen);
2. sample ``group_size`` videos per item with the SDE sampler of :mod:`grpo` (the pipeline's
   own conditioning: ``encode_prompt``, ``prepare_condition``, ``predict_velocity``) and keep
   the latents and per-step log-probs;
3. score each video with the judge (``JudgeVerdict.score`` in [0, 1]);
4. group-normalised advantages per item, clipped to ``advantage_clip``;
5. for a fraction of the SDE steps, re-score the stored transitions under the current
   weights: ``policy_weight`` x the clipped surrogate + ``kl_beta`` x the exact Gaussian KL
   to the reference model (the Executor the run started from) + ``anchor_beta`` x the
   squared gap to the frozen Demonstrator's velocity given the detailed solution (the
   paper's anchor, on the Executor's own SDE paths), backprop; ``minibatches_per_step``
   optimizer steps per rollout batch (after the first the ratio clip acts).

``shared_group_noise`` starts every video of a group from one initial noise (Flow-GRPO);
``max_minutes`` stops the launch on a wall-clock budget, saving and exporting the last step.

LoRA (``lora_rank > 0``, real scale; the reference is the base with the adapter disabled) or
full fine-tuning (sim scale; the reference is a frozen copy). Checkpoints
``output_dir/checkpoints/step_NNNNNN/`` (:mod:`executor_core.train_state`) hold the trained
weights, the optimizer (safetensors), the training state and the config; a rerun resumes
from the newest one. ``metrics.jsonl`` is the reward curve; ``output_dir/pipeline`` the
final Executor.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from executor_core.atomic_io import atomic_path, write_bytes_atomic
from executor_core.config_cli import cli_main, configure_cli_logging, parse_config, save_config_json
from executor_core.frame_stats import grain_excess
from executor_core.train_state import latest_checkpoint, load_training_state, save_checkpoint
from self_distillation.grpo import (
    clipped_surrogate_loss,
    gaussian_kl_same_std,
    group_advantages,
    sample_sde,
    schedule_sigma_cap,
    sde_step,
    sde_step_mean_std,
)
from self_distillation.judging import (
    JudgeConfig,
    episode_for_item,
    judge_videos,
    make_judge,
)
from self_distillation.task_items import (
    TaskItem,
    check_task_families,
    items_of_families,
    load_items,
)
from self_distillation.video_models import load_video_pipeline, resolve_device
from video_models.configuration_executor import LoraConfigSpec
from video_models.modeling_executor import (
    add_lora,
    is_lora_export,
    load_local_pipeline,
    lora_export_config,
    save_lora,
)
from video_models.processing_executor import images_to_tensor, tensor_to_clips

logger = logging.getLogger(__name__)

WEIGHTS = "transformer.safetensors"  # in a checkpoint: the trained weights (LoRA: adapter)


@dataclass
class GRPOConfig:
    items: Path = Path("outputs/method_sim/proposals")  # training items (executor-propose)
    output_dir: Path = Path("outputs/method_sim/grpo")
    init_pipeline: Path | None = None  # the distilled Executor; None = random model_preset
    model_preset: str = "sim"
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    num_steps: int = 300
    prompts_per_step: int = 4
    group_size: int = 8
    micro_batch_size: int = 8  # videos per backward pass (memory)
    minibatches_per_step: int = 1  # optimizer steps per rollout batch (> 1: the clip acts)
    num_inference_steps: int = 10
    eta: float = 0.7  # SDE noise level (0 = ODE, no exploration)
    # Classifier-free guidance of the policy's velocity; None = the pipeline's own
    # guidance_scale, so that RL trains the very sampler the pipeline runs at inference.
    guidance_scale: float | None = None
    train_timestep_fraction: float = 0.6  # share of the SDE steps trained on each step
    clip_range: float = 1e-3  # ratios of element-averaged log-probs stay close to 1
    advantage_clip: float = 5.0
    kl_beta: float = 0.004
    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_rank: int = 0  # > 0: LoRA on attention projections (real scale)
    lora_alpha: float = 16.0
    # Anchor (the paper's beta_d, ~0.01): keeps the Executor's velocity close to the frozen
    # Demonstrator's given the detailed solution, on the Executor's own SDE paths.
    anchor_beta: float = 0.0
    anchor_pipeline: Path | None = None  # the frozen Demonstrator (a saved pipeline)
    # weight of the policy-gradient loss: 0 with anchor_beta > 0 is the anchor alone
    # (on-policy distillation from the Demonstrator, the rewards only logged)
    policy_weight: float = 1.0
    # Flow-GRPO / DanceGRPO: the videos of a group start from one initial noise (the SDE's
    # own noise still differs), so that their rewards differ by the sampling path alone
    shared_group_noise: bool = False
    # wall-clock budget of this launch in minutes (0: none): the run stops after the step
    # past which one more step would overrun it, saves that step and exports, as after
    # num_steps. A resumed launch gets a budget of its own (the GPU chain resumes GRPO in
    # chunks so); no schedule follows it, unlike the video trainer's run-wide max_minutes
    max_minutes: float = 0.0
    save_every: int = 25
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    limit_items: int | None = None
    # task families GRPO trains on (empty: all), e.g. ("push", "pick_place") where the
    # Executor's samples of the others never execute and their groups carry no signal
    families: tuple[str, ...] = ()
    # reward minus grain_penalty x the grain a video adds over its first frame (0: off):
    # guards against the grain executed-reward RL learns (results/rl_gpu3)
    grain_penalty: float = 0.0

    def __post_init__(self) -> None:
        check_task_families(self.families)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite, got {value!r}")
        if self.weight_decay < 0 or self.max_grad_norm <= 0:
            raise ValueError(
                f"need weight_decay >= 0, max_grad_norm > 0; got "
                f"{self.weight_decay!r}, {self.max_grad_norm!r}"
            )
        for name in (
            "num_steps",
            "prompts_per_step",
            "micro_batch_size",
            "minibatches_per_step",
            "num_inference_steps",
            "save_every",
            "keep_checkpoints",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.group_size < 2:
            raise ValueError(
                f"group_size must be >= 2 (advantages are relative), got {self.group_size!r}"
            )
        if self.num_inference_steps < 2:
            raise ValueError(
                f"num_inference_steps must be >= 2 (one SDE step + the final ODE "
                f"step), got {self.num_inference_steps!r}"
            )
        if not self.eta > 0:
            raise ValueError(f"eta must be > 0 for a stochastic policy, got {self.eta!r}")
        if not 0.0 < self.train_timestep_fraction <= 1.0:
            raise ValueError(
                f"train_timestep_fraction must be in (0, 1], got {self.train_timestep_fraction!r}"
            )
        if self.clip_range <= 0 or self.advantage_clip <= 0 or self.kl_beta < 0:
            raise ValueError(
                f"need clip_range > 0, advantage_clip > 0, kl_beta >= 0; got "
                f"{self.clip_range!r}, {self.advantage_clip!r}, {self.kl_beta!r}"
            )
        if self.grain_penalty < 0:
            raise ValueError(f"grain_penalty must be >= 0, got {self.grain_penalty!r}")
        if self.anchor_beta < 0:
            raise ValueError(f"anchor_beta must be >= 0, got {self.anchor_beta!r}")
        if self.policy_weight < 0 or self.max_minutes < 0:
            raise ValueError(
                f"need policy_weight >= 0, max_minutes >= 0; got "
                f"{self.policy_weight!r}, {self.max_minutes!r}"
            )
        if self.policy_weight == 0 and self.anchor_beta == 0:
            raise ValueError("policy_weight 0 and anchor_beta 0 train nothing")
        if self.learning_rate <= 0 or self.lora_rank < 0:
            raise ValueError(
                f"need learning_rate > 0, lora_rank >= 0; got "
                f"{self.learning_rate!r}, {self.lora_rank!r}"
            )


PRESETS: dict[str, GRPOConfig] = {
    "debug": GRPOConfig(
        items=Path("outputs/method_debug/proposals"),
        output_dir=Path("outputs/method_debug/grpo"),
        init_pipeline=Path("outputs/method_debug/executor_distilled/pipeline"),
        model_preset="debug",
        num_steps=2,
        prompts_per_step=2,
        group_size=2,
        micro_batch_size=2,
        num_inference_steps=3,
        save_every=1,
        learning_rate=1e-3,
        limit_items=4,
    ),
    "sim": GRPOConfig(
        items=Path("outputs/method_sim/proposals"),
        output_dir=Path("outputs/method_sim/grpo"),
        init_pipeline=Path("outputs/method_sim/executor_distilled/pipeline"),
        minibatches_per_step=4,
    ),
}


# ------------------------------------------------------------------------------ rollouts
@dataclass
class GroupRollout:
    latents: torch.Tensor  # (K + 1, B, C, T, h, w)
    log_probs: torch.Tensor  # (K, B) under the sampling weights
    sigmas: torch.Tensor  # (K + 1,)
    condition: torch.Tensor  # (B, ...)
    embeds: torch.Tensor  # (B, L, D)
    frames: np.ndarray  # (B, T, S, S, 3) uint8
    group_ids: torch.Tensor  # (B,) index of the item in the step
    # The anchor's inputs (its condition, the solutions encoded), None without an anchor.
    anchor_condition: Any = None
    anchor_embeds: torch.Tensor | None = None


def velocity(
    pipe: Any,
    x: torch.Tensor,
    sigma: torch.Tensor,
    condition: torch.Tensor,
    embeds: torch.Tensor,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """The pipeline's velocity at noise level ``sigma`` (timestep = 1000 sigma); CFG with
    zero text as the unconditional input when ``guidance_scale`` > 1."""
    t = (sigma * pipe.scheduler.config.num_train_timesteps).reshape(1).to(x.device)
    return pipe.predict_velocity(x, condition, t, embeds, guidance_scale=guidance_scale)


def policy_guidance(pipe: Any, cfg: GRPOConfig) -> float:
    if cfg.guidance_scale is not None:
        return float(cfg.guidance_scale)
    return float(getattr(pipe.config, "guidance_scale", 1.0) or 1.0)


@torch.no_grad()
def sample_groups(
    pipe: Any, items: list[TaskItem], cfg: GRPOConfig, step: int, anchor: Any = None
) -> GroupRollout:
    """``group_size`` SDE samples per item; seeds are a function of (seed, step, slot).
    With an ``anchor`` (the Demonstrator) its inputs for the items' solutions are kept."""
    device = pipe._execution_device
    n = cfg.group_size
    images = [it.image_rgb for it in items for _ in range(n)]
    prompts = [it.prompt for it in items for _ in range(n)]
    num_frames, size = pipe.config.num_frames, pipe.config.size_px
    embeds = pipe.encode_prompt(prompts, device)
    first = images_to_tensor(images, size).to(device)
    condition = pipe.prepare_condition(first.to(pipe.transformer.dtype), num_frames)
    pipe.scheduler.set_timesteps(cfg.num_inference_steps, device=device)
    sigmas = pipe.scheduler.sigmas.float().cpu()
    base = cfg.seed * 1_000_003 + step * 10_007
    noise_ids = [i // n if cfg.shared_group_noise else i for i in range(len(images))]
    generators = [torch.Generator("cpu").manual_seed(base + i) for i in noise_ids]
    x0 = pipe.prepare_latents(pipe.latent_shape(len(images), num_frames, size), generators, device)
    step_gen = torch.Generator(device=device).manual_seed(base + 999_983)
    roll = sample_sde(
        lambda x, s: velocity(pipe, x, s, condition, embeds, policy_guidance(pipe, cfg)),
        x0,
        sigmas.to(device),
        cfg.eta,
        generator=step_gen,
    )
    video = pipe.decode(roll.latents[-1]).float().clamp(-1.0, 1.0)
    video[:, :, 0] = first.float()
    gids = torch.arange(len(items)).repeat_interleave(n)
    out = GroupRollout(
        roll.latents, roll.log_probs, sigmas, condition, embeds, tensor_to_clips(video), gids
    )
    if anchor is not None:
        solutions = [it.proposal.solution_text for it in items for _ in range(n)]
        out.anchor_embeds = anchor.encode_prompt(solutions, device)
        out.anchor_condition = anchor.prepare_condition(
            first.to(anchor.transformer.dtype), num_frames
        )
    return out


def pick_items(num_items: int, step: int, count: int, seed: int) -> list[int]:
    """Items of a step: epoch-wise permutations, a pure function of (seed, step)."""
    per_epoch = max(num_items // count, 1)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(num_items)
    perm = np.resize(perm, max(count, num_items))
    return [int(i) for i in perm[k * count : (k + 1) * count]]


def train_steps(cfg: GRPOConfig, step: int, num_sde_steps: int) -> list[int]:
    """Which SDE steps are trained on at ``step`` (a fixed-size random subset)."""
    count = max(1, round(cfg.train_timestep_fraction * num_sde_steps))
    rng = np.random.default_rng([cfg.seed, step, 17])
    return sorted(int(k) for k in rng.choice(num_sde_steps, size=count, replace=False))


# ---------------------------------------------------------------------------- the model
class PolicyAndReference:
    """The trainable transformer and the frozen reference behind one velocity call."""

    def __init__(self, pipe: Any, cfg: GRPOConfig) -> None:
        self.pipe = pipe
        # LoRA when asked, or when the pipeline brings an adapter (a real-scale LoRA export).
        self.lora = cfg.lora_rank > 0 or bool(getattr(pipe.transformer, "peft_config", None))
        self.guidance = policy_guidance(pipe, cfg)
        transformer = pipe.transformer
        if self.lora and not getattr(transformer, "peft_config", None):
            add_lora(transformer, LoraConfigSpec(rank=cfg.lora_rank, alpha=cfg.lora_alpha))
        if self.lora:  # a loaded real-scale pipeline brings its adapter (modeling_executor)
            self.reference = None
        else:
            self.reference = copy.deepcopy(transformer).requires_grad_(False).eval()
            transformer.requires_grad_(True)
        # Sampled and re-scored in eval mode (no dropout, LoRA's included): the ratio then
        # compares one network with itself, exactly 1 on the first minibatch; with dropout
        # on in one pass only it would not be, and the clip would act on noise.
        transformer.eval()

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.pipe.transformer.parameters() if p.requires_grad]

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.lora:
            from peft.utils import get_peft_model_state_dict

            state = get_peft_model_state_dict(self.pipe.transformer)
        else:
            state = self.pipe.transformer.state_dict()
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.lora:
            from peft.utils import set_peft_model_state_dict

            result = set_peft_model_state_dict(self.pipe.transformer, state)
            if getattr(result, "unexpected_keys", None):
                raise ValueError(f"unexpected LoRA keys {result.unexpected_keys[:5]!r}")
        else:
            self.pipe.transformer.load_state_dict(state, strict=True)

    @torch.no_grad()
    def reference_velocity(
        self, x: torch.Tensor, sigma: torch.Tensor, condition: torch.Tensor, embeds: torch.Tensor
    ) -> torch.Tensor:
        if self.lora:
            self.pipe.transformer.disable_adapters()
            try:
                return velocity(self.pipe, x, sigma, condition, embeds, self.guidance)
            finally:
                self.pipe.transformer.enable_adapters()
        trained = self.pipe.transformer
        # predict_velocity calls self.transformer; swap in the reference for one call.
        self.pipe.register_modules(transformer=self.reference)
        try:
            return velocity(self.pipe, x, sigma, condition, embeds, self.guidance)
        finally:
            self.pipe.register_modules(transformer=trained)

    def export(self, path: Path, lora_model: Any = None) -> None:
        """Save the trained pipeline (LoRA fused into the base weights), or with
        ``lora_model`` (the preset of a real-scale LoRA export) the adapter alone."""
        if self.lora and lora_model is not None:
            save_lora(self.pipe.transformer, path, lora_model)
            return
        if self.lora:
            self.pipe.transformer.fuse_lora()
            self.pipe.transformer.unload_lora()
        self.pipe.transformer.eval()
        self.pipe.save_pretrained(path)


# --------------------------------------------------------------------------- one update
def grpo_update(
    policy: PolicyAndReference,
    roll: GroupRollout,
    advantages: torch.Tensor,
    cfg: GRPOConfig,
    step: int,
    opt: torch.optim.Optimizer,
    anchor: Any = None,
) -> dict[str, float]:
    """``minibatches_per_step`` optimizer steps on the stored rollout (the videos split
    into that many minibatches, each over the chosen SDE steps); averaged diagnostics.

    The first minibatch is on-policy (ratio 1); later ones see the weights the earlier
    ones moved, which is where the clip acts.
    """
    pipe = policy.pipe
    # sample_sde makes every step but the last (to sigma = 0, deterministic) an SDE step.
    steps = train_steps(cfg, step, roll.log_probs.shape[0] - 1)
    cap = schedule_sigma_cap(roll.sigmas)
    order = torch.randperm(
        roll.latents.shape[1], generator=torch.Generator().manual_seed(cfg.seed + step)
    )
    minibatches = [m for m in order.chunk(cfg.minibatches_per_step) if len(m)]
    totals = {
        "policy_loss": 0.0,
        "kl": 0.0,
        "anchor": 0.0,
        "clip_fraction": 0.0,
        "ratio_mean": 0.0,
    }
    norms = []
    for mb in minibatches:
        chunks = [mb[i : i + cfg.micro_batch_size] for i in range(0, len(mb), cfg.micro_batch_size)]
        scale = 1.0 / (len(steps) * len(chunks))
        weight = scale / len(minibatches)  # for the diagnostics averaged over the whole step
        opt.zero_grad(set_to_none=True)
        for k in steps:
            s, s_next = roll.sigmas[k], roll.sigmas[k + 1]
            for idx in chunks:
                idx = idx.to(roll.latents.device)
                x, x_next = roll.latents[k, idx], roll.latents[k + 1, idx]
                cond, emb = roll.condition[idx], roll.embeds[idx]
                v = velocity(pipe, x, s, cond, emb, policy.guidance)
                _, lp, mean = sde_step(x, v, s, s_next, cfg.eta, cap, sample=x_next)
                loss, stats = clipped_surrogate_loss(
                    lp, roll.log_probs[k, idx], advantages[idx], cfg.clip_range
                )
                kl = torch.zeros((), device=loss.device)
                if cfg.kl_beta > 0:
                    v_ref = policy.reference_velocity(x, s, cond, emb)
                    mean_ref, std = sde_step_mean_std(x, v_ref, s, s_next, cfg.eta, cap)
                    kl = gaussian_kl_same_std(mean, mean_ref, std).mean()
                anchor_loss = torch.zeros((), device=loss.device)
                if anchor is not None and cfg.anchor_beta > 0:
                    anchor_loss = anchor_velocity_loss(anchor, roll, idx, x, s, v, policy.guidance)
                total = cfg.policy_weight * loss + cfg.kl_beta * kl + cfg.anchor_beta * anchor_loss
                (total * scale).backward()
                totals["anchor"] += anchor_loss.item() * weight
                totals["policy_loss"] += loss.item() * weight
                totals["kl"] += kl.item() * weight
                totals["clip_fraction"] += stats["clip_fraction"] * weight
                totals["ratio_mean"] += stats["ratio_mean"] * weight
        norms.append(float(torch.nn.utils.clip_grad_norm_(policy.trainable(), cfg.max_grad_norm)))
        opt.step()
    opt.zero_grad(set_to_none=True)
    return {**totals, "grad_norm": float(np.mean(norms)), "trained_sde_steps": len(steps)}


def anchor_velocity_loss(
    anchor: Any,
    roll: GroupRollout,
    idx: torch.Tensor,
    x: torch.Tensor,
    sigma: torch.Tensor,
    v: torch.Tensor,
    guidance: float,
) -> torch.Tensor:
    """Mean squared gap between the policy's velocity ``v`` and the frozen Demonstrator's
    given the detailed solution, at the policy's own SDE sample ``x``."""
    with torch.no_grad():
        cond = roll.anchor_condition[idx]
        v_anchor = velocity(anchor, x, sigma, cond, roll.anchor_embeds[idx], guidance)
    return ((v.float() - v_anchor.float()) ** 2).mean()


def load_pipeline(cfg: GRPOConfig, path: Path | None) -> Any:
    """A saved pipeline (or, without a path, a random ``model_preset`` one), or a real-scale
    LoRA export on its local base folder (``video_models.modeling_executor``)."""
    if not is_lora_export(path):
        return load_video_pipeline(path, cfg.model_preset, cfg.device, cfg.seed)
    pipe = load_local_pipeline(path, str(resolve_device(cfg.device)), seed=cfg.seed)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_anchor(cfg: GRPOConfig) -> Any:
    """The frozen Demonstrator of the anchor loss, or None (``anchor_beta`` 0)."""
    if cfg.anchor_beta <= 0:
        return None
    if cfg.anchor_pipeline is None:
        raise ValueError("anchor_beta > 0 needs --anchor_pipeline (the Demonstrator)")
    anchor = load_pipeline(cfg, cfg.anchor_pipeline)
    anchor.transformer.requires_grad_(False).eval()
    return anchor


# ----------------------------------------------------------------------------- checkpoints
def _save_checkpoint(
    cfg: GRPOConfig, policy: PolicyAndReference, opt: torch.optim.Optimizer, step: int
) -> Path:
    """``checkpoints/step_N``: the trained weights (LoRA: the adapter only), the optimizer
    and the config (:mod:`executor_core.train_state`)."""

    def save_model(folder: Path) -> None:
        save_file(policy.state_dict(), folder / WEIGHTS)

    return save_checkpoint(
        cfg.output_dir, step, save_model, opt, {}, cfg, keep=cfg.keep_checkpoints
    )


def _resume(cfg: GRPOConfig, policy: PolicyAndReference, opt: torch.optim.Optimizer) -> int:
    """Load the newest checkpoint if there is one; returns the step to start at."""
    ckpt = latest_checkpoint(cfg.output_dir)
    if ckpt is None:
        return 0
    policy.load_state_dict(load_file(ckpt / WEIGHTS))
    step = int(load_training_state(ckpt, opt, cfg)["step"])
    logger.info("resumed from %s (step %d)", ckpt, step)
    return step


def over_budget(max_minutes: float, elapsed_s: float, steps_done: int) -> bool:
    """Whether one more step (at the mean pace so far) would overrun ``max_minutes``
    (0: no budget)."""
    if max_minutes <= 0 or steps_done <= 0:
        return False
    return elapsed_s * (steps_done + 1) / steps_done > 60.0 * max_minutes


def append_metrics(path: Path, record: dict[str, Any], resumed_step: int | None) -> None:
    """Append one line; on the first write after a resume, drop lines past the checkpoint
    (steps a killed run logged but did not save)."""
    if resumed_step is not None and path.is_file():
        kept = [
            ln
            for ln in path.read_text().splitlines()
            if ln.strip() and json.loads(ln)["step"] <= resumed_step
        ]
        write_bytes_atomic(path, "".join(ln + "\n" for ln in kept).encode())
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


# ------------------------------------------------------------------------------ the loop
def train_grpo(cfg: GRPOConfig, judge: Any | None = None) -> Path:
    """Run (or resume) GRPO; ``judge`` overrides ``cfg.judge`` (any ``VideoJudge``)."""
    out = Path(cfg.output_dir)
    save_config_json(cfg, out / "config.json")
    torch.manual_seed(cfg.seed)
    items = items_of_families(load_items(cfg.items, limit=cfg.limit_items), cfg.families)
    judge = judge if judge is not None else make_judge(cfg.judge)
    pipe = load_pipeline(cfg, cfg.init_pipeline)
    policy = PolicyAndReference(pipe, cfg)
    anchor = load_anchor(cfg)
    opt = torch.optim.AdamW(policy.trainable(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    start = _resume(cfg, policy, opt)
    logger.info(
        "GRPO on %d items, %d trainable parameters, device %s",
        len(items),
        sum(p.numel() for p in policy.trainable()),
        resolve_device(cfg.device),
    )
    resumed: int | None = start if start > 0 else None
    t0 = time.perf_counter()
    for step in range(start, cfg.num_steps):
        record = grpo_step(policy, judge, items, cfg, step, opt, anchor)
        append_metrics(out / "metrics.jsonl", record, resumed)
        resumed = None
        out_of_time = over_budget(cfg.max_minutes, time.perf_counter() - t0, step + 1 - start)
        if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.num_steps or out_of_time:
            _save_checkpoint(cfg, policy, opt, step + 1)
        if out_of_time:
            logger.info("stopping at step %d: the %.1f min budget", step + 1, cfg.max_minutes)
            break
    final = out / "pipeline"
    with atomic_path(final, directory=True) as tmp:
        lora_model = None
        if is_lora_export(cfg.init_pipeline):
            lora_model = lora_export_config(
                cfg.init_pipeline, device=str(resolve_device(cfg.device))
            )
        policy.export(tmp, lora_model)
    logger.info("wrote the RL-trained Executor to %s", final)
    return final


def penalised_rewards(
    scores: list[float], grain: list[float], grain_penalty: float
) -> torch.Tensor:
    """The judge's scores minus ``grain_penalty`` x each video's grain above its first
    frame's (``executor_core.frame_stats.grain_excess``; none below it)."""
    penalty = grain_penalty * np.maximum(np.asarray(grain, dtype=np.float32), 0.0)
    return torch.tensor(np.asarray(scores, dtype=np.float32) - penalty, dtype=torch.float32)


def group_success_shares(success: list[bool], group_ids: torch.Tensor) -> dict[str, float]:
    """The share of the step's groups with at least one success, and with mixed outcomes
    (the groups whose success can rank their samples)."""
    ids = group_ids.tolist()
    groups = [[s for s, g in zip(success, ids, strict=True) if g == k] for k in sorted(set(ids))]
    return {
        "groups_with_a_success": float(np.mean([any(g) for g in groups])),
        "groups_mixed": float(np.mean([any(g) and not all(g) for g in groups])),
    }


def grpo_step(
    policy: PolicyAndReference,
    judge: Any,
    items: list[TaskItem],
    cfg: GRPOConfig,
    step: int,
    opt: torch.optim.Optimizer,
    anchor: Any = None,
) -> dict[str, Any]:
    """Sample groups, judge them, one GRPO update; returns the step's metrics record.
    ``anchor``: the frozen Demonstrator of the anchor loss (``cfg.anchor_beta``)."""
    t0 = time.perf_counter()
    pipe = policy.pipe
    chosen = [items[i] for i in pick_items(len(items), step, cfg.prompts_per_step, cfg.seed)]
    pipe.transformer.eval()  # sampled and re-scored without dropout (PolicyAndReference)
    roll = sample_groups(pipe, chosen, cfg, step, anchor)
    episodes = [episode_for_item(it) for it in chosen]
    verdicts = judge_videos(judge, list(roll.frames), [episodes[int(g)] for g in roll.group_ids])
    grain = [grain_excess(video) for video in roll.frames]
    rewards = penalised_rewards([v.score for v in verdicts], grain, cfg.grain_penalty)
    adv = group_advantages(rewards, roll.group_ids).clamp(-cfg.advantage_clip, cfg.advantage_clip)
    stats = grpo_update(policy, roll, adv.to(roll.latents.device), cfg, step, opt, anchor)
    record = {
        "step": step + 1,
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std(unbiased=False)),
        "success_rate": float(np.mean([v.success for v in verdicts])),
        **group_success_shares([v.success for v in verdicts], roll.group_ids),
        # grain the sampled videos add over their rendered first frame: executed-reward
        # RL raised it as it lost closed-loop success (results/rl_gpu3)
        "grain_excess": float(np.mean(grain)),
        **stats,
        "seconds": time.perf_counter() - t0,
    }
    logger.info(
        "step %d: reward %.3f success %.2f kl %.2e clip %.2f (%.1f s)",
        step + 1,
        record["reward_mean"],
        record["success_rate"],
        record["kl"],
        record["clip_fraction"],
        record["seconds"],
    )
    return record


@cli_main("executor-grpo")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(GRPOConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    print(train_grpo(cfg))


if __name__ == "__main__":
    sys.exit(main())
