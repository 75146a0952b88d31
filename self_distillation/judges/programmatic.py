"""A programmatic video judge: object positions from rendered colours, task from metadata.

Every object of the simulated scene has its own saturated hue (the palette is exported by
``executor_sim.scene.PALETTE_RGB`` and, per episode, in ``scene.colors_rgb`` of
``meta/executor_episodes.jsonl``). Shading changes brightness, not hue, so a pixel belongs to
an object when it is saturated and bright enough and its hue is closest to that object's
hue (within ``hue_tol_deg``). Each object is the largest connected blob of its pixels.

Decisions, in image space (the judge sees only pixels, like a person watching the video):

* ``pick_place``: the cube's centre lies inside the bowl's ellipse (the bowl's place is
  read from the first frame, the real one; the final frames may only add pixels next to it,
  where the arm hid it at the start).
* ``push``: the cube's centre lies inside the mat's bounding box (same rule).
* ``stack``: the cube sits right above the target cube in the image (horizontally aligned
  within the target's width, higher by 0.2 to 1.25 target heights), the target cube is
  still where it started, and the moved cube is not where it started (a cube that happened
  to lie just behind the target would otherwise pass).

The decision must hold in each of the last ``final_frames`` frames (the task is done and
the scene is still), and those frames must be a plausible scene: no colour may cover more
than ``max_growth`` times its first-frame area (a noisy or garbled imagined video has
object colours scattered everywhere, which would otherwise land "inside" the goal).

Limits: from one view a cube held just above the bowl looks like a cube
in it; the tolerances are documented in docs/video_models.md.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from executor_core.config_cli import check_non_negative, check_positive
from self_distillation.judges.base import JudgeVerdict

logger = logging.getLogger(__name__)

# The simulator's palette (executor_sim.scene.PALETTE_RGB); per-episode colours in the
# metadata take precedence, so a changed palette reaches the judge through the data.
DEFAULT_PALETTE_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 190, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 25),
    "bowl": (200, 40, 200),
    "mat": (20, 200, 210),
}

_PROMPT_PATTERNS = (
    ("pick_place", re.compile(r"\b(\w+) (?:cube|block)\b.*\bbowl\b")),
    ("push", re.compile(r"\b(\w+) (?:cube|block)\b.*\b(?:mat|square|target)\b")),
    ("stack", re.compile(r"\b(\w+) (?:cube|block)\b.*\b(?:on|onto)(?: top of)? the (\w+)")),
)


@dataclass(frozen=True)
class ProgrammaticJudgeConfig:
    palette_rgb: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: dict(DEFAULT_PALETTE_RGB)
    )
    hue_tol_deg: float = 22.0
    min_saturation: float = 0.4
    min_value: float = 0.25
    min_pixels: int = 2  # a 3 cm cube is ~3x3 px at 64 px
    final_frames: int = 2
    stack_max_rise: float = 1.25  # in target-cube heights (measured: ~0.5)
    stack_min_rise: float = 0.2
    target_moved_tol: float = 1.5  # in target-cube widths
    static_margin_px: int = 2  # how far the bowl/mat may extend past its first-frame pixels
    max_growth: float = 2.0  # a colour may cover at most this many times its first-frame area
    growth_slack_px: float = 16.0  # ... plus one cube's area at 64 px (it may be unoccluded)

    def __post_init__(self) -> None:
        if not 0 < self.hue_tol_deg < 90:
            raise ValueError(f"hue_tol_deg must be in (0, 90), got {self.hue_tol_deg!r}")
        if self.min_pixels < 1 or self.final_frames < 1:
            raise ValueError(
                f"min_pixels and final_frames must be >= 1, got "
                f"{self.min_pixels!r}, {self.final_frames!r}"
            )
        for name in ("min_saturation", "min_value"):  # HSV thresholds
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        check_positive(self, "stack_min_rise", "stack_max_rise", "target_moved_tol")
        if not self.stack_min_rise < self.stack_max_rise:
            raise ValueError(
                f"stack_min_rise must be below stack_max_rise, got {self.stack_min_rise!r} "
                f">= {self.stack_max_rise!r}"
            )
        check_positive(self, "max_growth")
        if self.max_growth < 1.0:
            raise ValueError(f"max_growth must be >= 1, got {self.max_growth!r}")
        check_non_negative(self, "growth_slack_px")
        for name, rgb in self.palette_rgb.items():
            if len(rgb) != 3 or not all(0 <= int(c) <= 255 for c in rgb):
                raise ValueError(
                    f"palette colour {name!r} must be 3 values in [0, 255], got {rgb!r}"
                )


@dataclass(frozen=True)
class Blob:
    center_uv: tuple[float, float]  # pixels, u right, v down
    n_px: int
    width_px: int
    height_px: int


def check_frames(frames: np.ndarray, min_frames: int) -> None:
    """A judge's input: (T >= min_frames, H, W, 3) uint8; a ValueError naming what it got."""
    if (
        not isinstance(frames, np.ndarray)
        or frames.ndim != 4
        or frames.shape[-1] != 3
        or frames.dtype != np.uint8
    ):
        raise ValueError(
            f"frames must be (T, H, W, 3) uint8, got {getattr(frames, 'shape', None)!r} "
            f"{getattr(frames, 'dtype', None)!r}"
        )
    if frames.shape[0] < min_frames:
        raise ValueError(f"need at least {min_frames} frames, got {frames.shape[0]}")


def _hue_deg(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> hue in degrees [0, 360)."""
    hsv = cv2.cvtColor(rgb.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
    return hsv[..., 0].reshape(rgb.shape[:-1]).astype(np.float32) * (360.0 / 256.0)


class ProgrammaticJudge:
    """Judge a video of the tabletop task family from its colours (see module docstring)."""

    def __init__(self, config: ProgrammaticJudgeConfig | None = None) -> None:
        self.config = config or ProgrammaticJudgeConfig()

    # ---------------------------------------------------------------------- segmentation
    def label_map(
        self, frame: np.ndarray, palette: dict[str, tuple[int, int, int]]
    ) -> tuple[np.ndarray, list[str]]:
        """(H, W) int: index into the returned names, -1 for background."""
        cfg = self.config
        names = list(palette)
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
        hue = hsv[..., 0] * (360.0 / 256.0)
        sat, val = hsv[..., 1] / 255.0, hsv[..., 2] / 255.0
        ref = _hue_deg(np.array([palette[n] for n in names], dtype=np.uint8))  # (K,)
        diff = np.abs(hue[..., None] - ref[None, None, :])
        diff = np.minimum(diff, 360.0 - diff)  # (H, W, K)
        best = diff.argmin(axis=-1)
        ok = (
            (diff.min(axis=-1) <= cfg.hue_tol_deg)
            & (sat >= cfg.min_saturation)
            & (val >= cfg.min_value)
        )
        return np.where(ok, best, -1), names

    def find(
        self, frame: np.ndarray, name: str, palette: dict[str, tuple[int, int, int]]
    ) -> Blob | None:
        labels, names = self.label_map(frame, palette)
        return self._blob((labels == names.index(name)).astype(np.uint8))

    def _blob(self, mask: np.ndarray) -> Blob | None:
        n, _comp, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return None
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[k, cv2.CC_STAT_AREA])
        if area < self.config.min_pixels:
            return None
        return Blob(
            (float(centroids[k, 0]), float(centroids[k, 1])),
            area,
            int(stats[k, cv2.CC_STAT_WIDTH]),
            int(stats[k, cv2.CC_STAT_HEIGHT]),
        )

    def static_region(
        self, frames: np.ndarray, name: str, palette: dict[str, tuple[int, int, int]]
    ) -> np.ndarray | None:
        """Bounding box (u0, v0, u1, v1) of a static object (bowl, mat).

        Its place is read from the FIRST frame (the real camera frame, not imagined); the
        final frames may only add pixels next to it (the arm can hide part of it at the
        start), so an imagined video cannot move or grow the goal region.
        """
        cfg = self.config
        first = self._mask(frames[0], name, palette)
        n, _comp, stats, _ = cv2.connectedComponentsWithStats(first, connectivity=8)
        if n <= 1:
            return None
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h = (
            int(stats[k, i])
            for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT)
        )
        m = cfg.static_margin_px
        near = np.zeros_like(first)
        near[max(y - m, 0) : y + h + m, max(x - m, 0) : x + w + m] = 1
        union = (_comp == k).astype(np.uint8)
        for frame in frames[-cfg.final_frames :]:
            union |= self._mask(frame, name, palette) & near
        vs, us = np.nonzero(union)
        return np.array([us.min() - 0.5, vs.min() - 0.5, us.max() + 0.5, vs.max() + 0.5])

    def _mask(
        self, frame: np.ndarray, name: str, palette: dict[str, tuple[int, int, int]]
    ) -> np.ndarray:
        labels, names = self.label_map(frame, palette)
        return (labels == names.index(name)).astype(np.uint8)

    def implausible(
        self, frames: np.ndarray, palette: dict[str, tuple[int, int, int]]
    ) -> str | None:
        """Why the final frames are not a plausible scene (colours appearing from nowhere or
        multiplying, as in a noisy or garbled imagined video), or None."""
        cfg = self.config
        labels0, names = self.label_map(frames[0], palette)
        for frame in frames[-cfg.final_frames :]:
            labels, _ = self.label_map(frame, palette)
            for i, name in enumerate(names):
                before, after = int((labels0 == i).sum()), int((labels == i).sum())
                slack = cfg.growth_slack_px * (frame.shape[0] / 64) ** 2
                if after > cfg.max_growth * before + slack:
                    return f"{name} covers {after} px at the end vs {before} px at the start"
        return None

    # -------------------------------------------------------------------------- the task
    @staticmethod
    def task_of(episode: dict[str, Any]) -> tuple[str, str, str]:
        """(family, object colour, target) from the record (or parsed from its prompt)."""
        family = episode.get("task_family")
        obj, target = episode.get("object"), episode.get("target")
        prompt = str(episode.get("prompt", "")).lower()
        if obj is None or target is None:
            for fam, pattern in _PROMPT_PATTERNS:
                if family not in (None, fam):
                    continue
                m = pattern.search(prompt)
                if m:
                    family = fam
                    obj = m.group(1)
                    target = {"pick_place": "bowl", "push": "mat"}.get(fam) or m.group(2)
                    break
        if family not in ("pick_place", "push", "stack") or not obj or not target:
            raise ValueError(
                f"cannot tell the task of episode {episode.get('episode_index')!r}: family "
                f"{family!r}, object {obj!r}, target {target!r}, prompt {prompt!r}"
            )
        return str(family), str(obj), str(target)

    def palette_for(self, episode: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
        palette = dict(self.config.palette_rgb)
        colors = (episode.get("scene") or {}).get("colors_rgb") or {}
        palette.update({k: tuple(int(c) for c in v) for k, v in colors.items()})
        return palette

    def judge(self, frames: np.ndarray, episode: dict[str, Any]) -> JudgeVerdict:
        cfg = self.config
        check_frames(frames, cfg.final_frames + 1)
        family, obj, target = self.task_of(episode)
        palette = self.palette_for(episode)
        for name in (obj, target):
            if name not in palette:
                raise ValueError(f"colour {name!r} not in the palette {sorted(palette)!r}")
        finals = frames[-cfg.final_frames :]
        passed, reasons = 0, []
        garbled = self.implausible(frames, palette)
        if garbled is not None:
            return JudgeVerdict(
                False,
                0.0,
                f"implausible final frames: {garbled}",
                {"family": family, "object": obj, "target": target},
            )
        if family in ("pick_place", "push"):
            region = self.static_region(frames, target, palette)
            if region is None:
                return JudgeVerdict(False, 0.0, f"no {target} visible in the video")
            for frame in finals:
                ok, why = self.inside_region(
                    self.find(frame, obj, palette),
                    region,
                    ellipse=family == "pick_place",
                    obj=obj,
                    target=target,
                )
                passed += ok
                reasons.append(why)
            details = {"region_uv": region.tolist()}
        else:
            base0 = self.find(frames[0], target, palette)
            top0 = self.find(frames[0], obj, palette)
            if base0 is None:
                return JudgeVerdict(False, 0.0, f"no {target} cube in the first frame")
            for frame in finals:
                ok, why = self.stacked(
                    self.find(frame, obj, palette),
                    self.find(frame, target, palette),
                    base0,
                    top0,
                    obj,
                    target,
                )
                passed += ok
                reasons.append(why)
            details = {"target_first_uv": base0.center_uv}
        success = passed == len(finals)
        return JudgeVerdict(
            success,
            passed / len(finals),
            "; ".join(reasons),
            {"family": family, "object": obj, "target": target, **details},
        )

    def inside_region(
        self, blob: Blob | None, region: np.ndarray, ellipse: bool, obj: str, target: str
    ) -> tuple[bool, str]:
        if blob is None:
            return False, f"{obj} cube not visible"
        u, v = blob.center_uv
        u0, v0, u1, v1 = region
        if ellipse:
            cu, cv_, ru, rv = (u0 + u1) / 2, (v0 + v1) / 2, (u1 - u0) / 2, (v1 - v0) / 2
            inside = ((u - cu) / ru) ** 2 + ((v - cv_) / rv) ** 2 <= 1.0
        else:
            inside = u0 <= u <= u1 and v0 <= v <= v1
        where = f"{obj} at ({u:.1f}, {v:.1f}) px, {target} box {np.round(region, 1).tolist()}"
        return bool(inside), ("inside: " if inside else "outside: ") + where

    def stacked(
        self,
        top: Blob | None,
        base: Blob | None,
        base0: Blob,
        top0: Blob | None,
        obj: str,
        target: str,
    ) -> tuple[bool, str]:
        cfg = self.config
        if top is None or base is None:
            missing = obj if top is None else target
            return False, f"{missing} cube not visible"
        w, h = max(base0.width_px, 1), max(base0.height_px, 1)
        du = abs(top.center_uv[0] - base.center_uv[0])
        rise = base.center_uv[1] - top.center_uv[1]
        moved = float(
            np.hypot(base.center_uv[0] - base0.center_uv[0], base.center_uv[1] - base0.center_uv[1])
        )
        # The moved cube must have left its start (it may have lain just behind the target).
        left_start = (
            top0 is None
            or float(
                np.hypot(top.center_uv[0] - top0.center_uv[0], top.center_uv[1] - top0.center_uv[1])
            )
            >= 0.5 * w
        )
        ok = (
            du <= 0.75 * w
            and cfg.stack_min_rise * h <= rise <= cfg.stack_max_rise * h
            and moved <= cfg.target_moved_tol * w
            and left_start
        )
        why = (
            f"{obj} over {target}: du {du:.1f} px, rise {rise:.1f} px, {target} moved "
            f"{moved:.1f} px (cube {w}x{h} px)"
        )
        return bool(ok), ("stacked: " if ok else "not stacked: ") + why
