"""``executor-sim-scenes``: unlabeled initial scene images, the input to task proposal.

Scene ``i`` is the first frame of ``env.reset(seed + i)`` (the same layout an episode with
that seed starts from), with no task attached. Writes ``scene_<seed>.png`` files and
``scenes.jsonl`` (seed, file, layout); existing images are kept, so a rerun resumes.

    executor-sim-scenes --num-scenes 100 --seed 0 --resolution 128 --root outputs/scenes
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from executor_core.atomic_io import atomic_path, write_text_atomic
from executor_core.config_cli import (
    check_non_negative,
    cli_main,
    configure_cli_logging,
    parse_config,
    save_config_json,
)
from executor_sim.env import EnvConfig, make_env
from executor_sim.generate import normalise_cli_args

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScenesConfig:
    root: Path = Path("outputs/scenes")
    num_scenes: int = 100
    seed: int = 0
    resolution: int = 128
    camera_jitter_m: float = 0.0

    def __post_init__(self) -> None:
        if self.num_scenes <= 0:
            raise ValueError(f"num_scenes must be > 0, got {self.num_scenes!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed!r}")
        if not 16 <= self.resolution <= 256:
            raise ValueError(f"resolution must be in [16, 256], got {self.resolution!r}")
        check_non_negative(self, "camera_jitter_m")  # its upper bound: EnvConfig's


PRESETS: dict[str, ScenesConfig] = {
    "debug": ScenesConfig(root=Path("outputs/scenes_debug"), num_scenes=3, resolution=64),
}


def _write_png_atomic(path: Path, image_rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {tmp}")


def generate_scenes(cfg: ScenesConfig) -> list[dict]:
    """Render the scenes; returns the index records (one per scene)."""
    from tqdm import tqdm

    cfg.root.mkdir(parents=True, exist_ok=True)
    save_config_json(cfg, cfg.root / "scenes_config.json")
    env = make_env(EnvConfig(image_size_px=cfg.resolution, camera_jitter_m=cfg.camera_jitter_m))
    records = []
    try:
        for i in tqdm(range(cfg.num_scenes), desc="scenes"):
            seed = cfg.seed + i
            path = cfg.root / f"scene_{seed:07d}.png"
            env.reset(seed)
            if not path.is_file():
                _write_png_atomic(path, env.render(cfg.resolution))
            assert env.scene is not None
            records.append({"seed": seed, "file": path.name, "scene": env.scene.to_json()})
    finally:
        env.close()
    write_text_atomic(cfg.root / "scenes.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    return records


@cli_main("executor-sim-scenes")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    argv = normalise_cli_args(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(ScenesConfig, argv, PRESETS)
    records = generate_scenes(cfg)
    print(f"{len(records)} scenes in {cfg.root.resolve()}")


if __name__ == "__main__":
    sys.exit(main())
