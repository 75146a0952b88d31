"""A programmatic physics-plausibility score for imagined videos of the simulated scene.

DreamGen-Bench scores physics with a VLM. For the simulator's scenes a cheaper, reproducible
proxy exists because every object has its own colour: track each cube with the programmatic
judge's colour segmentation and penalise the two failures video models make most,

* objects vanishing or appearing (a cube found in the first frame must stay findable; the
  arm may hide it, so up to ``max_hidden_fraction`` of the frames may miss it), and
* teleporting (a jump of the cube's centre between consecutive frames larger than
  ``max_jump_fraction`` of the image width, faster than the arm can carry it).

Score = mean over the cubes of (1 if both hold else 0); 1 for a video with no cube. It
measures consistency, not correctness: a static video scores 1 (instruction following is
measured separately).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlausibilityConfig:
    max_hidden_fraction: float = 0.5
    max_jump_fraction: float = 0.25

    def __post_init__(self) -> None:
        for name in ("max_hidden_fraction", "max_jump_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")


def physics_plausibility(
    frames: np.ndarray, episode: dict[str, Any], judge: Any, cfg: PlausibilityConfig | None = None
) -> tuple[float, dict]:
    """(score in [0, 1], per-cube details) for (T, H, W, 3) uint8 ``frames``.

    ``judge`` is a ``ProgrammaticJudge`` (its ``find`` and ``palette_for`` do the
    segmentation); the cubes are those of ``episode["scene"]["cubes"]``.
    """
    cfg = cfg or PlausibilityConfig()
    cubes = list((episode.get("scene") or {}).get("cubes") or [])
    palette = judge.palette_for(episode)
    width = frames.shape[2]
    details: dict[str, dict] = {}
    for cube in cubes:
        if cube not in palette:
            raise ValueError(f"cube colour {cube!r} not in the palette {sorted(palette)!r}")
        centres = []
        for frame in frames:
            blob = judge.find(frame, cube, palette)
            centres.append(None if blob is None else np.asarray(blob.center_uv, float))
        if centres[0] is None:  # not visible at the start: nothing to hold it to
            continue
        hidden = sum(c is None for c in centres) / len(centres)
        seen = [c for c in centres if c is not None]
        jumps = [float(np.linalg.norm(b - a)) for a, b in itertools.pairwise(seen)]
        max_jump = max(jumps, default=0.0) / width
        ok = hidden <= cfg.max_hidden_fraction and max_jump <= cfg.max_jump_fraction
        details[cube] = {"hidden_fraction": hidden, "max_jump_fraction": max_jump, "ok": ok}
    if not details:
        return 1.0, details
    return float(np.mean([d["ok"] for d in details.values()])), details
