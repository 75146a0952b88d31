"""A programmatic judge that watches the whole video: task, agent and consistency scores.

The old programmatic judge (``judges/programmatic.py``, still the default of the method's
stages) looks at the task cube in the last two frames only, so a cube teleported to the goal,
a copy appearing there or a cube held over it passes. This judge reads every frame with the
same colour segmentation (``ProgrammaticJudge.label_map``: objects by hue) plus the arm. The
SO-101 renders in greys (palette ``arm`` / ``arm_dark``): an arm pixel is one whose saturation
is below ``arm_max_saturation`` (the table's is ~0.16, the arm's under 0.04). Only the
**moving arm** counts: arm pixels outside the first frame's arm (the real frame, the arm at
its start pose, grown by ``home_margin_px``), so an arm parked at home is never "at" a cube
that lies next to it. An object is **at the arm** when a moving-arm pixel lies within
``arm_margin_px`` of its pixels.

Each object is its colour's largest blob. Its centre is **reliable** in frames where the blob
has at least ``visible_fraction`` of its first-frame area (a partly hidden cube's centre
shifts). Pixel tolerances are for 64 px frames (``reference_px``) and scale with the frame
size (areas with its square). Three scores, each in [0, 1]; each passes at its threshold
(``task_pass``, ``agent_pass``, ``consistency_pass``, default 1.0: no violation at all).

**task** = placed x released. *placed*: the mean over the last ``rest_frames`` frames of
``on_goal * (0.5 + 0.5 * still)``, where ``on_goal`` is the old judge's goal test on that
frame (centre in the bowl's ellipse, on the mat's box, or stacked: 0.2-1.25 target heights
above the target cube, which has not moved; goal places come from the first frame) and
``still`` means the centre moved at most ``rest_tol_px`` since the frame before.
*released*: 1 when the moving arm is no longer at the cube in the last frame, else 0.5.
A cube carried over the goal, or lowered onto it and still held, scores at most 0.5; a cube
resting there with the arm gone scores 1. One view shows a cube's height only relative to
the goal (the stack band): "resting" is read as still with the arm gone, since a cube cannot
stay up on its own.

**agent** = 0 when the moving arm never comes to the task cube (nothing was done);
otherwise the fraction of frame transitions in which every cube's motion is the arm's doing.
A reliable centre moving more than ``move_tol_px`` between two frames needs the arm at the
cube in both frames, or in one of them for a nudge of at most ``nudge_px`` (the pads touch a
cube as they close on it).

**consistency** = the fraction of frames 1..T-1 in which none of these happens:

* *appear*: a cube colour absent from the first frame covers ``appear_px`` or more;
* *vanish*: a cube of the first frame is not visible, the moving arm is not where it was last
  seen and was not at it then (only the arm can hide or carry a cube out of sight);
* *duplicate*: another blob of a cube's colour, of at least ``copy_fraction`` of the cube's
  first-frame area, lies more than ``duplicate_gap_px`` away from the main one (a jaw in
  front of a cube splits it into touching parts or slivers, not a second cube);
* *grow*: a cube, the bowl or the mat covers more than ``max_growth`` x its first-frame area
  + ``growth_slack_px``, or a reliable cube grows more than ``max_step_growth`` x from one
  frame to the next with the arm away (a copy merging with its original: nearer the camera a
  carried cube looks at most ~1.5x its first size, and only gradually);
* *teleport*: a reliable centre jumps more than ``max_jump_px`` between two frames (the
  scripted expert's fastest carry moves a cube ~18 px per frame at 64 px);
* *still*: an object that should stay still moved: a cube other than the task cube (for stack
  the target too) is more than ``still_tol_px`` (about a cube's width) from its first-frame
  place in a frame where it is reliable (the expert's pads sometimes nudge a neighbour by
  ~2 cm, 5 px; moving the wrong cube is far more), or the bowl or mat is more than
  ``goal_still_tol_px`` from its place in a frame where ``goal_visible_fraction`` of it shows.

Judged success = all three pass. ``JudgeVerdict.score`` = the mean of the three.

Measured on probe videos rendered by the simulator (``executor_sim.probe_videos``,
``benchmarks/bench_judge_probes.py``): expert episodes pass, and none of the six adversarial
kinds does; docs/video_models.md has the table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from executor_core.config_cli import check_positive
from self_distillation.judges.base import JudgeVerdict
from self_distillation.judges.programmatic import (
    Blob,
    ProgrammaticJudge,
    ProgrammaticJudgeConfig,
    check_frames,
)

logger = logging.getLogger(__name__)

CUBE_NAMES: tuple[str, ...] = ("red", "green", "blue", "yellow")
GOAL_NAMES: tuple[str, ...] = ("bowl", "mat")
SCORE_NAMES: tuple[str, ...] = ("task", "agent", "consistency")
_FAR_PX = 1e6  # distance to the moving arm when there is none
_POSITIVE_FIELDS = (
    "arm_margin_px",
    "rest_tol_px",
    "move_tol_px",
    "nudge_px",
    "appear_px",
    "duplicate_gap_px",
    "growth_slack_px",
    "max_jump_px",
    "still_tol_px",
    "goal_still_tol_px",
)


@dataclass(frozen=True)
class ExecutionAwareJudgeConfig:
    colours: ProgrammaticJudgeConfig = field(default_factory=ProgrammaticJudgeConfig)
    reference_px: int = 64  # the pixel tolerances below are for frames of this size
    arm_max_saturation: float = 0.09
    home_margin_px: int = 1  # the first frame's arm, grown by this, is the parked arm
    arm_margin_px: float = 2.5
    visible_fraction: float = 0.6
    goal_visible_fraction: float = 0.9
    rest_frames: int = 2
    rest_tol_px: float = 1.0
    move_tol_px: float = 1.5
    nudge_px: float = 4.0
    appear_px: float = 4.0  # an area
    copy_fraction: float = 0.3
    duplicate_gap_px: float = 3.0
    max_growth: float = 1.75
    growth_slack_px: float = 4.0  # an area
    max_step_growth: float = 1.3
    max_jump_px: float = 24.0
    still_tol_px: float = 6.0
    goal_still_tol_px: float = 1.5
    task_pass: float = 1.0
    agent_pass: float = 1.0
    consistency_pass: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.arm_max_saturation < self.colours.min_saturation:
            raise ValueError(
                f"arm_max_saturation must be in (0, {self.colours.min_saturation}) (below the "
                f"objects' saturation), got {self.arm_max_saturation!r}"
            )
        for name in ("visible_fraction", "goal_visible_fraction", "copy_fraction"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if self.reference_px < 16 or self.rest_frames < 1 or self.home_margin_px < 0:
            raise ValueError(
                f"need reference_px >= 16, rest_frames >= 1, home_margin_px >= 0; got "
                f"{self.reference_px!r}, {self.rest_frames!r}, {self.home_margin_px!r}"
            )
        check_positive(self, *_POSITIVE_FIELDS, "max_growth", "max_step_growth")
        if not (self.max_growth >= 1.0 and self.max_step_growth >= 1.0):
            raise ValueError(
                f"max_growth and max_step_growth must be >= 1, got {self.max_growth!r}, "
                f"{self.max_step_growth!r}"
            )
        for name in ("task_pass", "agent_pass", "consistency_pass"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ExecutionAwareVerdict(JudgeVerdict):
    """A ``JudgeVerdict`` (success: all three pass; score: their mean) that also carries the
    three scores; code that reads a ``JudgeVerdict`` reads it unchanged."""

    task: float = 0.0
    agent: float = 0.0
    consistency: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in SCORE_NAMES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")

    @property
    def scores(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SCORE_NAMES}


@dataclass(frozen=True)
class Sighting:
    """One object in one frame."""

    blob: Blob | None  # its colour's largest blob (None: not visible)
    area_px: int  # all pixels of its colour
    far_parts_px: tuple[int, ...]  # areas of other blobs farther than duplicate_gap_px
    arm_px: float  # distance from the blob to the nearest moving-arm pixel

    @property
    def visible(self) -> bool:
        return self.blob is not None


@dataclass(frozen=True)
class FrameView:
    objects: dict[str, Sighting]  # every palette colour
    arm_distance: np.ndarray  # (H, W) float32, distance to the nearest moving-arm pixel


@dataclass(frozen=True)
class JudgedTask:
    """What one video is judged against."""

    family: str
    obj: str
    target: str
    cubes: tuple[str, ...]  # the cubes visible in the first frame
    scale: float  # frame size / reference_px


class ExecutionAwareJudge:
    """Judges a video of the tabletop task family from all its frames (module docstring)."""

    def __init__(self, config: ExecutionAwareJudgeConfig | None = None) -> None:
        self.config = config or ExecutionAwareJudgeConfig()
        self.colours = ProgrammaticJudge(self.config.colours)

    def judge(self, frames: np.ndarray, episode: dict[str, Any]) -> ExecutionAwareVerdict:
        cfg = self.config
        check_frames(frames, cfg.rest_frames + 1)
        family, obj, target = self.colours.task_of(episode)
        palette = self.colours.palette_for(episode)
        for name in (obj, target):
            if name not in palette:
                raise ValueError(f"colour {name!r} not in the palette {sorted(palette)!r}")
        views = self.views(frames, palette)
        cubes = tuple(c for c in CUBE_NAMES if c in palette and views[0].objects[c].visible)
        task = JudgedTask(family, obj, target, cubes, frames.shape[1] / cfg.reference_px)
        results = {
            "task": self.task_score(frames, views, task, palette),
            "agent": self.agent_score(views, task),
            "consistency": self.consistency_score(views, task),
        }
        thresholds = {
            "task": cfg.task_pass,
            "agent": cfg.agent_pass,
            "consistency": cfg.consistency_pass,
        }
        passed = {k: results[k][0] >= thresholds[k] for k in SCORE_NAMES}
        failed = [k for k in SCORE_NAMES if not passed[k]]
        reason = "; ".join(f"{k}: {results[k][1]}" for k in failed) or "all three pass"
        return ExecutionAwareVerdict(
            success=not failed,
            score=sum(r[0] for r in results.values()) / len(results),
            reason=reason,
            details={
                "family": family,
                "object": obj,
                "target": target,
                "passed": passed,
                "why": {k: r[1] for k, r in results.items()},
            },
            **{k: r[0] for k, r in results.items()},
        )

    # ----------------------------------------------------------------------- perception
    def arm_mask(self, frame: np.ndarray) -> np.ndarray:
        """(H, W) bool: grey pixels (the arm's palette is unsaturated, the table is not)."""
        sat = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV_FULL)[..., 1].astype(np.float32) / 255.0
        return sat < self.config.arm_max_saturation

    def views(
        self, frames: np.ndarray, palette: dict[str, tuple[int, int, int]]
    ) -> list[FrameView]:
        """Every palette object and the moving arm, frame by frame."""
        cfg = self.config
        scale = frames.shape[1] / cfg.reference_px
        size = 2 * cfg.home_margin_px + 1
        home = cv2.dilate(
            self.arm_mask(frames[0]).astype(np.uint8), np.ones((size, size), np.uint8)
        ).astype(bool)
        views = []
        for frame in frames:
            moving = self.arm_mask(frame) & ~home
            distance = (
                cv2.distanceTransform((~moving).astype(np.uint8), cv2.DIST_L2, 3)
                if moving.any()
                else np.full(frame.shape[:2], _FAR_PX, np.float32)
            )
            labels, names = self.colours.label_map(frame, palette)
            objects = {n: self._sighting(labels == i, distance, scale) for i, n in enumerate(names)}
            views.append(FrameView(objects, distance))
        return views

    def _sighting(self, mask: np.ndarray, arm_distance: np.ndarray, scale: float) -> Sighting:
        cfg = self.config
        n, comp, stats, centroids = cv2.connectedComponentsWithStats(
            mask.astype(np.uint8), connectivity=8
        )
        area = int(mask.sum())
        areas = stats[1:, cv2.CC_STAT_AREA]
        if n <= 1 or areas.max() < cfg.colours.min_pixels:
            return Sighting(None, area, (), _FAR_PX)
        k = 1 + int(np.argmax(areas))
        blob = Blob(
            (float(centroids[k, 0]), float(centroids[k, 1])),
            int(stats[k, cv2.CC_STAT_AREA]),
            int(stats[k, cv2.CC_STAT_WIDTH]),
            int(stats[k, cv2.CC_STAT_HEIGHT]),
        )
        main = comp == k
        gap = cv2.distanceTransform((~main).astype(np.uint8), cv2.DIST_L2, 3)
        far = tuple(
            int(stats[j, cv2.CC_STAT_AREA])
            for j in range(1, n)
            if j != k and float(gap[comp == j].min()) > cfg.duplicate_gap_px * scale
        )
        return Sighting(blob, area, far, float(arm_distance[main].min()))

    def _reliable(self, views: list[FrameView], t: int, name: str) -> bool:
        ref, blob = views[0].objects[name].blob, views[t].objects[name].blob
        return (
            ref is not None
            and blob is not None
            and blob.n_px >= self.config.visible_fraction * ref.n_px
        )

    def _moved(self, views: list[FrameView], t: int, name: str) -> float | None:
        """Centre displacement from frame t to t+1 when both centres are reliable."""
        if not (self._reliable(views, t, name) and self._reliable(views, t + 1, name)):
            return None
        return _distance(views[t].objects[name].blob, views[t + 1].objects[name].blob)

    def _at_arm(self, sighting: Sighting, task: JudgedTask) -> bool:
        return sighting.arm_px <= self.config.arm_margin_px * task.scale

    # ---------------------------------------------------------------------------- task
    def task_score(
        self,
        frames: np.ndarray,
        views: list[FrameView],
        task: JudgedTask,
        palette: dict[str, tuple[int, int, int]],
    ) -> tuple[float, str]:
        """placed x released (module docstring), with the reasons."""
        cfg = self.config
        region = None
        if task.family in ("pick_place", "push"):
            region = self.colours.static_region(frames, task.target, palette)
            if region is None:
                return 0.0, f"no {task.target} visible in the video"
        placed, notes = 0.0, []
        for t in range(len(frames) - cfg.rest_frames, len(frames)):
            on_goal, where = self._on_goal(views, t, task, region)
            still, how = self._still(views, t, task)
            placed += on_goal * (0.5 + 0.5 * still)
            notes.append(f"frame {t}: {where}; {how}")
        last = views[-1].objects[task.obj]
        released = not self._at_arm(last, task)
        if not released:
            notes.append(f"the arm is still at the {task.obj} cube ({last.arm_px:.1f} px)")
        score = placed / cfg.rest_frames * (1.0 if released else 0.5)
        return score, " | ".join(notes)

    def _on_goal(
        self, views: list[FrameView], t: int, task: JudgedTask, region: np.ndarray | None
    ) -> tuple[bool, str]:
        top = views[t].objects[task.obj].blob
        if region is not None:
            pick = task.family == "pick_place"
            return self.colours.inside_region(top, region, pick, task.obj, task.target)
        base0 = views[0].objects[task.target].blob
        if base0 is None:
            return False, f"no {task.target} cube in the first frame"
        base, top0 = views[t].objects[task.target].blob, views[0].objects[task.obj].blob
        return self.colours.stacked(top, base, base0, top0, task.obj, task.target)

    def _still(self, views: list[FrameView], t: int, task: JudgedTask) -> tuple[bool, str]:
        now, before = views[t].objects[task.obj].blob, views[t - 1].objects[task.obj].blob
        if now is None or before is None:
            return False, f"{task.obj} not visible in frames {t - 1}-{t}"
        moved = _distance(now, before)
        if moved > self.config.rest_tol_px * task.scale:
            return False, f"{task.obj} still moving ({moved:.1f} px)"
        return True, "still"

    # --------------------------------------------------------------------------- agent
    def agent_score(self, views: list[FrameView], task: JudgedTask) -> tuple[float, str]:
        """0 if the arm never comes to the task cube, else the fraction of transitions in
        which no cube moves without the arm at it; with the reasons."""
        if not any(self._at_arm(v.objects[task.obj], task) for v in views):
            return 0.0, f"the arm never comes to the {task.obj} cube"
        bad = []
        for t in range(len(views) - 1):
            why = [w for c in task.cubes if (w := self._unexplained(views, t, c, task))]
            if why:
                bad.append(f"frames {t}-{t + 1}: " + ", ".join(why))
        score = 1.0 - len(bad) / (len(views) - 1)
        return score, "; ".join(bad) or "every motion has the arm at the cube"

    def _unexplained(self, views: list[FrameView], t: int, name: str, task: JudgedTask) -> str:
        """Why the cube's motion from frame t to t+1 is not the arm's doing ("" if it is)."""
        cfg = self.config
        moved = self._moved(views, t, name)
        if moved is None or moved <= cfg.move_tol_px * task.scale:
            return ""
        at_arm = [self._at_arm(v.objects[name], task) for v in (views[t], views[t + 1])]
        nudge = moved <= cfg.nudge_px * task.scale
        explained = any(at_arm) if nudge else all(at_arm)
        if explained:
            return ""
        return f"{name} moved {moved:.1f} px with the arm away"

    # --------------------------------------------------------------------- consistency
    def consistency_score(self, views: list[FrameView], task: JudgedTask) -> tuple[float, str]:
        """The fraction of frames 1..T-1 without appearance, vanishing, duplicate, growth,
        teleport or a moved still object; with the reasons."""
        notes = []
        for t in range(1, len(views)):
            problems = [
                *self._appeared(views[t], task),
                *(p for c in task.cubes for p in self._cube_problems(views, t, c, task)),
                *(p for g in GOAL_NAMES for p in self._goal_problems(views, t, g, task)),
            ]
            if problems:
                notes.append(f"frame {t}: " + ", ".join(problems))
        return 1.0 - len(notes) / (len(views) - 1), "; ".join(notes) or "consistent"

    def _appeared(self, view: FrameView, task: JudgedTask) -> list[str]:
        least = self.config.appear_px * task.scale**2
        return [
            f"{name} appeared ({view.objects[name].area_px} px)"
            for name in CUBE_NAMES
            if name in view.objects
            and name not in task.cubes
            and view.objects[name].area_px >= least
        ]

    def _grew(self, views: list[FrameView], t: int, name: str, task: JudgedTask) -> list[str]:
        cfg = self.config
        first, now = views[0].objects[name], views[t].objects[name]
        limit = cfg.max_growth * first.area_px + cfg.growth_slack_px * task.scale**2
        if now.area_px > limit:
            return [f"{name} grew to {now.area_px} px from {first.area_px}"]
        return []

    def _cube_problems(
        self, views: list[FrameView], t: int, name: str, task: JudgedTask
    ) -> list[str]:
        cfg = self.config
        now, before = views[t].objects[name], views[t - 1].objects[name]
        if not now.visible:
            return self._vanished(views, t, name, task)
        problems = self._grew(views, t, name, task)
        copies = [
            a for a in now.far_parts_px if a >= cfg.copy_fraction * views[0].objects[name].area_px
        ]
        if copies:
            problems.append(f"{name} duplicated (other blobs of {copies} px)")
        arm_away = not (self._at_arm(before, task) or self._at_arm(now, task))
        sudden = now.area_px > cfg.max_step_growth * before.area_px
        if sudden and arm_away and self._reliable(views, t - 1, name):
            problems.append(f"{name} grew from {before.area_px} to {now.area_px} px")
        moved = self._moved(views, t - 1, name)
        if moved is not None and moved > cfg.max_jump_px * task.scale:
            problems.append(f"{name} jumped {moved:.1f} px")
        if name != task.obj and self._reliable(views, t, name):
            off = _distance(now.blob, views[0].objects[name].blob)
            if off > cfg.still_tol_px * task.scale:
                problems.append(f"{name} should stay still but moved {off:.1f} px")
        return problems

    def _vanished(self, views: list[FrameView], t: int, name: str, task: JudgedTask) -> list[str]:
        """A cube out of sight must be behind the arm or have been carried by it."""
        k = max(i for i in range(t) if views[i].objects[name].visible)
        seen = views[k].objects[name]
        distance = views[t].arm_distance
        near = float(distance[_pixel(seen.blob.center_uv, distance.shape)])
        half = 0.5 * max(seen.blob.width_px, seen.blob.height_px)
        hidden = near <= self.config.arm_margin_px * task.scale + half
        if hidden or self._at_arm(seen, task):
            return []
        return [f"{name} vanished with the arm away"]

    def _goal_problems(
        self, views: list[FrameView], t: int, name: str, task: JudgedTask
    ) -> list[str]:
        """The bowl and the mat do not grow and do not move (where they are unoccluded)."""
        cfg = self.config
        ref, now = views[0].objects.get(name), views[t].objects.get(name)
        if ref is None or now is None or ref.blob is None:
            return []
        problems = self._grew(views, t, name, task)
        if now.blob is not None and now.blob.n_px >= cfg.goal_visible_fraction * ref.blob.n_px:
            off = _distance(now.blob, ref.blob)
            if off > cfg.goal_still_tol_px * task.scale:
                problems.append(f"the {name} moved {off:.1f} px")
        return problems


def _distance(a: Blob, b: Blob) -> float:
    return float(np.hypot(a.center_uv[0] - b.center_uv[0], a.center_uv[1] - b.center_uv[1]))


def _pixel(uv: tuple[float, float], shape: tuple[int, ...]) -> tuple[int, int]:
    """(row, column) of the pixel at ``uv``, clipped into an image of ``shape``."""
    u = min(max(round(uv[0]), 0), shape[1] - 1)
    v = min(max(round(uv[1]), 0), shape[0] - 1)
    return v, u
