"""``executor-distill``: self-distillation of the Executor from the Demonstrator's videos.

The Executor starts from the Demonstrator's weights and is trained with the video engineer's
flow-matching trainer (``video_models.train_executor``) on the generated demo
dataset, conditioned on the SHORT prompt only (``text_field=prompt``). This driver builds
the clip cache itself so that it can choose which demos to keep: all of them, or only those
the judge marked successful (``only_judged_success``); the trainer's own cache builder
would drop every unjudged demo, whose ``success`` is None.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from executor_core.atomic_io import claim_cache
from executor_core.config_cli import (
    cli_main,
    config_to_dict,
    configure_cli_logging,
    parse_config,
    require_local_dataset,
    save_config_json,
)
from video_models.clips_executor import clip_cache_for_model, write_clip_cache
from video_models.train_executor import PRESETS as TRAIN_PRESETS
from video_models.train_executor import TrainConfig, train

logger = logging.getLogger(__name__)


@dataclass
class DistillConfig:
    demos: Path = Path("outputs/method_sim/demos/dataset")  # executor-generate-demos output
    demonstrator: Path | None = Path("checkpoints/demonstrator_sim")  # init; None = scratch
    output_dir: Path = Path("outputs/method_sim/executor_distilled")
    train_preset: str = "sim"  # preset of executor-train-video
    max_steps: int | None = None  # overrides of the trainer preset
    batch_size: int | None = None
    learning_rate: float | None = None
    only_judged_success: bool = True

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")
        lr = self.learning_rate
        if lr is not None and not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning_rate must be > 0 and finite, or None; got {lr!r}")


PRESETS: dict[str, DistillConfig] = {
    "debug": DistillConfig(
        demos=Path("outputs/method_debug/demos/dataset"),
        demonstrator=None,
        output_dir=Path("outputs/method_debug/executor_distilled"),
        train_preset="debug",
        only_judged_success=False,
    ),
    "sim": DistillConfig(),
}


def build_prompt_cache(cfg: DistillConfig, train_cfg: TrainConfig) -> Path:
    """The clip cache of the demos with their short prompts (built once). ``output_dir`` is
    stamped with what the cache is made of, so a rerun there with other demos, another
    ``only_judged_success`` or another model refuses to reuse it (or resume on it)."""
    path = Path(cfg.output_dir) / "clips_prompt.npz"
    signature = {
        "demos": str(Path(cfg.demos).resolve()),
        "only_judged_success": cfg.only_judged_success,
        "model": config_to_dict(train_cfg.model),
    }
    claim_cache(cfg.output_dir, signature)
    if path.is_file():
        return path
    require_local_dataset(cfg.demos)  # before lerobot, which would try the Hub
    cache = clip_cache_for_model(
        [cfg.demos], "prompt", train_cfg.model, only_successful=cfg.only_judged_success
    )
    logger.info("distillation data: %d clips from %s", len(cache), cfg.demos)
    write_clip_cache(cache, path)
    return path


def run_distill(cfg: DistillConfig) -> Path:
    if cfg.train_preset not in TRAIN_PRESETS:
        raise ValueError(
            f"unknown train preset {cfg.train_preset!r}; known: {sorted(TRAIN_PRESETS)}"
        )
    save_config_json(cfg, Path(cfg.output_dir) / "distill_config.json")
    base = TRAIN_PRESETS[cfg.train_preset]
    overrides = {
        k: v
        for k, v in (
            ("max_steps", cfg.max_steps),
            ("batch_size", cfg.batch_size),
            ("learning_rate", cfg.learning_rate),
        )
        if v is not None
    }
    train_cfg = replace(
        base, output_dir=Path(cfg.output_dir), init_from=cfg.demonstrator, **overrides
    )
    cache = build_prompt_cache(cfg, train_cfg)
    train_cfg = replace(
        train_cfg,
        data=replace(
            train_cfg.data, dataset_roots=(cfg.demos,), cache_path=cache, text_field="prompt"
        ),
    )
    return train(train_cfg)


@cli_main("executor-distill")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(DistillConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    print(run_distill(cfg))


if __name__ == "__main__":
    sys.exit(main())
