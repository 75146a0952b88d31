"""``executor-propose``: scene images -> validated task proposals (items.jsonl + PNGs).

Scenes come from a folder of unlabeled images (``scenes_dir``) or are rendered from the
simulator (``num_sim_scenes`` seeds from ``first_seed``). The proposer is the simulator's
scene-grounded task family (``backend=sim``, the embedded default), a local transformers
VLM (``backend=transformers``) or an OpenAI-compatible endpoint (``backend=http``).
Rejected outputs go to ``rejections.jsonl`` and are counted in ``proposal_stats.json``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from executor_core.config_cli import cli_main, configure_cli_logging, parse_config, save_config_json
from executor_sim.tasks import is_novel_composition
from self_distillation.proposal_schema import TaskProposal
from self_distillation.task_items import (
    SimSceneTaskSource,
    items_from_batch,
    load_scene_dir,
    render_sim_scenes,
    save_items,
    write_bytes_atomic,
    write_jsonl_atomic,
)
from self_distillation.task_proposal import (
    SceneImage,
    SimTaskFamilyProposer,
    TaskProposer,
    VLMTaskProposer,
)
from self_distillation.vlm_backends import (
    HTTPVLM,
    HTTPVLMConfig,
    TransformersVLM,
    TransformersVLMConfig,
)

logger = logging.getLogger(__name__)


@dataclass
class ProposeConfig:
    output_dir: Path = Path("outputs/method_sim/proposals")
    backend: Literal["sim", "transformers", "http"] = "sim"
    # Unlabeled images (with backend=sim: an executor-sim-scenes folder, whose scenes.jsonl
    # carries the layouts); None = render simulator scenes here.
    scenes_dir: Path | None = None
    num_sim_scenes: int = 256
    first_seed: int = 0  # simulator seeds first_seed .. first_seed + num_sim_scenes - 1
    image_size_px: int = 64
    num_per_scene: int = 2
    # Leave out the (family, cube, target) combinations of executor_sim.NOVEL_COMPOSITIONS:
    # they are the benchmark's novel-composition split and never occur in training.
    hold_out_novel_compositions: bool = True
    vlm: TransformersVLMConfig = field(default_factory=TransformersVLMConfig)
    http: HTTPVLMConfig = field(default_factory=HTTPVLMConfig)

    def __post_init__(self) -> None:
        if self.backend not in ("sim", "transformers", "http"):
            raise ValueError(f"backend must be sim/transformers/http, got {self.backend!r}")
        if self.num_sim_scenes <= 0 or self.num_per_scene <= 0 or self.image_size_px < 16:
            raise ValueError(
                f"need num_sim_scenes > 0, num_per_scene > 0, image_size_px >= 16; got "
                f"{self.num_sim_scenes!r}, {self.num_per_scene!r}, {self.image_size_px!r}"
            )


PRESETS: dict[str, ProposeConfig] = {
    "debug": ProposeConfig(
        output_dir=Path("outputs/method_debug/proposals"),
        num_sim_scenes=4,
        image_size_px=32,
        num_per_scene=1,
    ),
    # Training scenes: seeds 0..511; held-out evaluation scenes start at 1000000 (executor_sim).
    "sim": ProposeConfig(
        output_dir=Path("outputs/method_sim/proposals"),
        num_sim_scenes=512,
        image_size_px=64,
        num_per_scene=2,
    ),
    "sim-heldout": ProposeConfig(
        output_dir=Path("outputs/method_sim/heldout"),
        num_sim_scenes=64,
        first_seed=1_000_000,
        image_size_px=64,
        num_per_scene=1,
    ),
}


def make_proposer(cfg: ProposeConfig) -> TaskProposer:
    if cfg.backend == "sim":
        return SimTaskFamilyProposer(
            SimSceneTaskSource(hold_out_novel=cfg.hold_out_novel_compositions)
        )
    if cfg.backend == "transformers":
        return VLMTaskProposer(TransformersVLM(cfg.vlm))
    return VLMTaskProposer(HTTPVLM(cfg.http))


def proposes_novel_composition(proposal: TaskProposal) -> bool:
    """True when the proposal's metadata names a held-out (family, cube, target)."""
    meta = proposal.metadata
    if "task_family" not in meta or "object" not in meta:
        return False
    return is_novel_composition(meta["task_family"], meta["object"], meta.get("target") or "")


def load_scenes(cfg: ProposeConfig) -> list[SceneImage]:
    if cfg.scenes_dir is not None:
        return load_scene_dir(cfg.scenes_dir)
    seeds = range(cfg.first_seed, cfg.first_seed + cfg.num_sim_scenes)
    return render_sim_scenes(list(seeds), cfg.image_size_px)


def run_propose(cfg: ProposeConfig) -> dict:
    """Propose for every scene; write items, rejections and stats; return the stats."""
    out = Path(cfg.output_dir)
    save_config_json(cfg, out / "config.json")
    scenes = load_scenes(cfg)
    proposer = make_proposer(cfg)
    t0 = time.perf_counter()
    batch = proposer.propose(scenes, cfg.num_per_scene)
    elapsed_s = time.perf_counter() - t0
    proposals = batch.proposals
    if cfg.hold_out_novel_compositions:  # a VLM's proposals too, where they name the parts
        proposals = [(sid, p) for sid, p in proposals if not proposes_novel_composition(p)]
    held_out = len(batch.proposals) - len(proposals)
    items = items_from_batch(scenes, proposals)
    save_items(items, out)
    write_jsonl_atomic(
        out / "rejections.jsonl",
        (
            {
                "scene_id": r.scene_id,
                "reason": r.reason,
                "detail": r.detail,
                "raw_output": r.raw_output,
            }
            for r in batch.rejections
        ),
    )
    stats = {
        **batch.stats.to_dict(),
        "proposer": proposer.name,
        "scenes": len(scenes),
        "items": len(items),
        "held_out_novel_compositions": held_out,
        "seconds": elapsed_s,
    }
    write_bytes_atomic(out / "proposal_stats.json", json.dumps(stats, indent=2).encode())
    logger.info(
        "%d scenes -> %d items (%s) in %.1f s",
        len(scenes),
        len(items),
        batch.stats.to_dict()["rejected"],
        elapsed_s,
    )
    return stats


@cli_main("executor-propose")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    cfg = parse_config(ProposeConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    stats = run_propose(cfg)
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    sys.exit(main())
