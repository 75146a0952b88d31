"""Train the execution critic on imagined videos labelled by executing them.

    .venv/bin/python benchmarks/bench_candidate_critics.py --item_folder \\
        outputs/wt/pack512/proposals --families push,pick_place --items 279 \\
        --model checkpoints/executor_anchor_sim --output outputs/critic_data/train.json \\
        --save_videos outputs/critic_data/train.npz
    executor-critic-train --preset sim_cpu --data_path outputs/critic_data/train.npz

A batch is whole items (all the candidates imagined for one start). The loss is the binary
cross-entropy of "executes" plus ``listwise_weight`` times a listwise term over each item
with both outcomes: minus the log of the softmax mass on its executing candidates. The
runner compares candidates of one segment, so that within-item ranking is what counts.

A ``tune_fraction`` of the data's items is held out; the weights kept are those of the
evaluation with the best tune ``select_by``: ``within_item_auc`` (the probability that an
executing video scores above a failing one *of the same item*) or ``auc`` (over all pairs,
which also rewards telling easy items from hard ones). Nothing of the benchmark's splits is
read. Re-running the command resumes from the newest checkpoint unless ``--resume=false``.

Output layout::

    output_dir/checkpoints/step_000500/{model/, optimizer.safetensors, training_state.json,
                                        train_config.json}
    output_dir/best/           the best tune-AUC weights so far
    output_dir/model/          the final (best) weights + config.json + train_config.json
    output_dir/metrics.jsonl   one line per evaluation
    output_dir/eval.json       the kept weights' step and tune metrics
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
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from execution_critic.configuration_critic import ExecutionCriticConfig
from execution_critic.modeling_critic import WEIGHTS_NAME, ExecutionCritic
from execution_critic.processing_critic import (
    LabelledVideos,
    execution_probability,
    load_labelled_videos,
    prepare_videos,
)
from executor_core.atomic_io import atomic_path, write_json_atomic, write_text_atomic
from executor_core.augment import color_jitter, random_shift
from executor_core.config_cli import (
    check_optimization,
    cli_main,
    configure_cli_logging,
    parse_config,
    save_config_json,
)
from executor_core.train_state import (
    CONFIG_JSON,
    latest_checkpoint,
    load_training_state,
    save_checkpoint,
)

logger = logging.getLogger(__name__)


SELECT_BY = ("within_item_auc", "auc")


@dataclass(frozen=True)
class TrainCriticConfig:
    data_path: Path = Path("outputs/critic_data/train.npz")
    output_dir: Path = Path("outputs/execution_critic")
    model: ExecutionCriticConfig = field(default_factory=ExecutionCriticConfig)
    tune_fraction: float = 0.2  # items held out to choose the kept weights
    select_by: str = "within_item_auc"  # or "auc" (see the module docstring)
    listwise_weight: float = 1.0
    steps: int = 3000
    items_per_batch: int = 4  # whole items: all their candidates
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 100
    shift_px: int = 3  # one random translation per video (all its frames)
    color_jitter: float = 0.05
    eval_every: int = 250
    save_every: int = 500
    seed: int = 0
    num_threads: int = 2
    resume: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.tune_fraction < 1.0:
            raise ValueError(f"tune_fraction must be in (0, 1), got {self.tune_fraction!r}")
        if self.select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {list(SELECT_BY)}, got {self.select_by!r}")
        if not 0.0 <= self.listwise_weight < math.inf:
            raise ValueError(
                f"listwise_weight must be >= 0 and finite, got {self.listwise_weight!r}"
            )
        for name in ("steps", "items_per_batch", "eval_every", "save_every", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        check_optimization(self)


PRESETS: dict[str, TrainCriticConfig] = {
    "debug": TrainCriticConfig(
        output_dir=Path("outputs/execution_critic_debug"),
        model=ExecutionCriticConfig(image_size_px=32, num_frames=4, conv_channels=(4, 8)),
        steps=2,
        items_per_batch=2,
        warmup_steps=0,
        eval_every=1,
        save_every=1,
        num_threads=1,
    ),
    # The committed sim critic: two CPU threads, about 10 minutes.
    "sim_cpu": TrainCriticConfig(),
}


def rank_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """P(score of a positive > score of a negative), ties counted half; None without both."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def within_item_auc(scores: np.ndarray, labels: np.ndarray, item_index: np.ndarray) -> float | None:
    """:func:`rank_auc` over the pairs of one item only (an executing and a failing
    candidate imagined from the same start), pooled over items; None without such pairs."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    wins = pairs = 0.0
    for item in np.unique(item_index):
        rows = item_index == item
        pos, neg = scores[rows][labels[rows]], scores[rows][~labels[rows]]
        wins += (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        pairs += len(pos) * len(neg)
    return float(wins / pairs) if pairs else None


def pick_rates(
    scores: np.ndarray, data: LabelledVideos, k: int | None = None
) -> dict[str, float | int]:
    """Per item, among its first ``k`` candidates (all: None): how often the top-scored one
    executes, against the first candidate alone and against any of them (the oracle)."""
    picked, first, oracle = [], [], []
    for item in np.unique(data.item_index):
        rows = np.flatnonzero(data.item_index == item)[:k]
        picked.append(bool(data.executed[rows[int(np.argmax(scores[rows]))]]))
        first.append(bool(data.executed[rows[0]]))
        oracle.append(bool(data.executed[rows].any()))
    return {
        "items": len(picked),
        "picked": float(np.mean(picked)),
        "candidate_0": float(np.mean(first)),
        "oracle": float(np.mean(oracle)),
    }


def split_items(data: LabelledVideos, tune_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Boolean masks (train, tune) over the videos, whole items on one side."""
    items = np.unique(data.item_index)
    rng = np.random.default_rng(seed)
    tune_items = rng.choice(items, size=max(1, round(tune_fraction * len(items))), replace=False)
    tune = np.isin(data.item_index, tune_items)
    if tune.all():
        raise ValueError(f"tune_fraction {tune_fraction} leaves no training item")
    return ~tune, tune


def check_tune_split(tune: LabelledVideos, select_by: str) -> None:
    """Refuse, before training, a tune split on which ``select_by`` is never defined (its
    labels alone decide that): no weights could be chosen and the run would fail at the
    end."""
    executed = tune.executed.astype(bool)
    scores = np.zeros(len(executed))  # whether a metric is defined depends on labels only
    if select_by == "auc":
        defined = rank_auc(scores, executed) is not None
        needs = "both an executing and a failing video"
    else:
        defined = within_item_auc(scores, executed, tune.item_index) is not None
        needs = "an item with both an executing and a failing candidate"
    if not defined:
        raise ValueError(
            f"select_by={select_by!r} is undefined on the tune split "
            f"({len(executed)} videos of {len(np.unique(tune.item_index))} items, "
            f"{int(executed.sum())} execute): it needs {needs}; change tune_fraction or "
            f"seed, or label more candidates per item"
        )


def evaluate(model: ExecutionCritic, data: LabelledVideos) -> dict[str, Any]:
    """AUC and pick rates of the critic on labelled videos."""
    scores = execution_probability(model, data.videos)
    return {
        "videos": len(scores),
        "auc": rank_auc(scores, data.executed),
        "within_item_auc": within_item_auc(scores, data.executed, data.item_index),
        **pick_rates(scores, data),
    }


def _lr_at(cfg: TrainCriticConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _batch(
    cfg: TrainCriticConfig, frames: torch.Tensor, items: list[torch.Tensor], step: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step ``step``'s batch: ``items_per_batch`` whole items (their rows of ``frames``),
    the row ids and the batch item of each row, drawn from a generator seeded by the step;
    the global RNG (dropout) is seeded by the step too (resumes exactly)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    torch.manual_seed(cfg.seed * 1_000_003 + step)  # the step's dropout
    chosen = torch.randint(0, len(items), (cfg.items_per_batch,), generator=gen).tolist()
    ids = torch.cat([items[i] for i in chosen])
    group = torch.cat([torch.full((len(items[i]),), k) for k, i in enumerate(chosen)])
    x = random_shift(frames[ids].float() / 127.5 - 1.0, cfg.shift_px, gen)
    return color_jitter(x, cfg.color_jitter, gen), ids, group


def critic_loss(
    logits: torch.Tensor, labels: torch.Tensor, group: torch.Tensor, listwise_weight: float
) -> torch.Tensor:
    """Binary cross-entropy plus ``listwise_weight`` x the mean over mixed items of minus the
    log softmax mass (within the item) on its executing candidates."""
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    terms = []
    for g in torch.unique(group):
        rows = group == g
        y = labels[rows] > 0.5
        if listwise_weight > 0 and y.any() and not y.all():
            log_p = torch.log_softmax(logits[rows], dim=0)
            terms.append(-torch.logsumexp(log_p[y], dim=0))
    if terms:
        loss = loss + listwise_weight * torch.stack(terms).mean()
    return loss


def _as_uint8_input(data: LabelledVideos, config: ExecutionCriticConfig) -> torch.Tensor:
    """(N, T, 3, S, S) uint8: the model's frames, kept compact in memory."""
    out = []
    for start in range(0, len(data.videos), 256):
        x = prepare_videos(data.videos[start : start + 256], config)
        out.append(torch.round((x + 1.0) * 127.5).to(torch.uint8))
    return torch.cat(out)


def _resume(
    cfg: TrainCriticConfig, model: ExecutionCritic, optimizer: torch.optim.Optimizer
) -> tuple[int, float, int]:
    """(start step, best tune AUC, its step) from the newest checkpoint, or a fresh start."""
    checkpoint = latest_checkpoint(cfg.output_dir) if cfg.resume else None
    if checkpoint is None:
        return 0, -1.0, -1
    model.load_state_dict(load_file(str(checkpoint / "model" / WEIGHTS_NAME)), strict=True)
    state = load_training_state(checkpoint, optimizer, cfg)
    logger.info("resumed from %s (step %d)", checkpoint, state["step"])
    return int(state["step"]), float(state["best_auc"]), int(state["best_step"])


def _drop_metrics_after(path: Path, step: int) -> None:
    """Keep the evaluations up to ``step`` (where the run starts): those a killed run
    logged past its checkpoint are evaluated again."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln)["step"] <= step]
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(ln + "\n" for ln in kept))


def train(cfg: TrainCriticConfig) -> Path:
    """Run (or resume) training; returns the final model folder."""
    data = load_labelled_videos(cfg.data_path)  # before anything is written
    train_mask, tune_mask = split_items(data, cfg.tune_fraction, cfg.seed)
    train_data, tune_data = data.subset(train_mask), data.subset(tune_mask)
    check_tune_split(tune_data, cfg.select_by)
    out = Path(cfg.output_dir)
    save_config_json(cfg, out / CONFIG_JSON)
    torch.set_num_threads(cfg.num_threads)
    logger.info(
        "train %d videos (%d execute), tune %d (%d execute)",
        len(train_data.videos),
        int(train_data.executed.sum()),
        len(tune_data.videos),
        int(tune_data.executed.sum()),
    )
    frames = _as_uint8_input(train_data, cfg.model)
    labels = torch.from_numpy(train_data.executed.astype(np.float32))
    items = [
        torch.from_numpy(np.flatnonzero(train_data.item_index == i))
        for i in np.unique(train_data.item_index)
    ]
    torch.manual_seed(cfg.seed)
    model = ExecutionCritic(cfg.model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    step, best_auc, best_step = _resume(cfg, model, optimizer)
    _drop_metrics_after(out / "metrics.jsonl", step)
    losses: list[float] = []
    t0 = time.perf_counter()
    while step < cfg.steps:
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(cfg, step)
        x, ids, group = _batch(cfg, frames, items, step)
        loss = critic_loss(model(x), labels[ids], group, cfg.listwise_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % cfg.eval_every == 0 or step == cfg.steps:
            metrics = evaluate(model, tune_data)
            auc = -1.0 if metrics[cfg.select_by] is None else metrics[cfg.select_by]
            if auc > best_auc:
                best_auc, best_step = auc, step
                with atomic_path(out / "best", directory=True) as tmp:
                    model.save_pretrained(tmp)
            line = {"step": step, "loss": float(np.mean(losses)), "tune": metrics}
            line["elapsed_s"] = time.perf_counter() - t0
            logger.info("step %d: %s", step, json.dumps(line))
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(line) + "\n")
            losses = []
        if step % cfg.save_every == 0 or step == cfg.steps:
            extra = {"best_auc": best_auc, "best_step": best_step}
            save_checkpoint(
                out,
                step,
                lambda d: model.save_pretrained(d / "model"),
                optimizer,
                extra,
                cfg,
                keep=2,
            )
    return _export(cfg, tune_data, best_step)


def _export(cfg: TrainCriticConfig, tune_data: LabelledVideos, best_step: int) -> Path:
    """The best tune-AUC weights as ``output_dir/model``, with the run's config and the
    tune metrics of those weights in ``eval.json``."""
    out = Path(cfg.output_dir)
    best = ExecutionCritic.from_pretrained(out / "best")
    final = out / "model"
    result = {"best_step": best_step, "tune": evaluate(best, tune_data)}
    with atomic_path(final, directory=True) as tmp:
        best.save_pretrained(tmp)
        shutil.copy(out / CONFIG_JSON, tmp / CONFIG_JSON)
        write_json_atomic(tmp / "eval.json", result)
    write_json_atomic(out / "eval.json", result)
    logger.info("kept step %d: %s", best_step, result["tune"])
    return final


@cli_main("executor-critic-train")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging("%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(TrainCriticConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    final = train(cfg)
    print(f"final execution critic: {final}")


if __name__ == "__main__":
    sys.exit(main())
