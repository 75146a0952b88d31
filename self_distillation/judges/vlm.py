"""A VLM judge behind the :class:`~self_distillation.judges.base.VideoJudge` protocol.

The video is shown as one contact sheet (``num_frames`` frames sampled evenly, first and
last included, tiled in reading order), so any single-image VLM backend works: a local
transformers model or an OpenAI-compatible endpoint (``self_distillation.vlm_backends``).
The model answers JSON with a success decision and two 0-10 scores, DreamGen-Bench style:
``instruction_following`` (does the video do the task?) and ``physics`` (do objects move
plausibly: no teleporting, melting or passing through each other?).

``score`` for ranking (GRPO) is ``success_weight * success + (1 - success_weight) *
instruction_following / 10``. Unparsable answers are a verdict of failure with score 0 and
reason ``unparsable``, counted in ``unparsable_count``: never silently a success.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from self_distillation.judges.base import JudgeVerdict

logger = logging.getLogger(__name__)

JUDGE_INSTRUCTION = """These are {n} frames of one video of a robot arm, in reading order
(left to right, top to bottom); the first frame is the real camera image.
The task was: "{prompt}".
Success looks like: {success}.
Answer with a JSON object only:
{{"success": true or false, "instruction_following": 0-10, "physics": 0-10,
  "reason": "one short sentence"}}
"instruction_following": how well the video does the task; "physics": how physically
plausible the motion is (objects do not teleport, deform or pass through each other)."""

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class VLMJudgeConfig:
    num_frames: int = 4  # frames on the contact sheet
    tile_px: int = 128  # each frame is resized to this square before tiling
    success_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames!r}")
        if self.tile_px < 16:
            raise ValueError(f"tile_px must be >= 16, got {self.tile_px!r}")
        if not 0.0 <= self.success_weight <= 1.0:
            raise ValueError(f"success_weight must be in [0, 1], got {self.success_weight!r}")


def contact_sheet(frames: np.ndarray, num_frames: int, tile_px: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> one (rows * tile, cols * tile, 3) uint8 grid of evenly spaced
    frames (first and last included), black tiles filling the last row."""
    import cv2

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    n = min(num_frames, frames.shape[0])
    idx = np.linspace(0, frames.shape[0] - 1, n).round().astype(int)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    sheet = np.zeros((rows * tile_px, cols * tile_px, 3), np.uint8)
    for k, i in enumerate(idx):
        r, c = divmod(k, cols)
        tile = cv2.resize(
            frames[i],
            (tile_px, tile_px),
            interpolation=cv2.INTER_AREA if frames.shape[1] > tile_px else cv2.INTER_NEAREST,
        )
        sheet[r * tile_px : (r + 1) * tile_px, c * tile_px : (c + 1) * tile_px] = tile
    return sheet


def parse_judge_answer(text: str) -> dict[str, Any]:
    """The judge's JSON answer -> {success: bool, instruction_following: float in [0, 10],
    physics: float in [0, 10], reason: str}; raises ValueError naming what is wrong."""
    m = _JSON_OBJECT.search(text or "")
    if m is None:
        raise ValueError(f"no JSON object in {str(text)[:120]!r}")
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError as exc:
        raise ValueError(f"bad JSON {m.group(0)[:120]!r}: {exc}") from None
    success = data.get("success")
    if isinstance(success, str) and success.lower() in ("true", "false", "yes", "no"):
        success = success.lower() in ("true", "yes")
    if not isinstance(success, bool):
        raise ValueError(f"'success' must be a boolean, got {success!r}")
    scores = {}
    for key in ("instruction_following", "physics"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
            raise ValueError(f"{key!r} must be a number in [0, 10], got {value!r}")
        scores[key] = float(value)
    return {"success": success, **scores, "reason": str(data.get("reason", ""))[:300]}


class VLMJudge:
    """Judges videos with a VLM backend (``generate(images, prompts) -> texts``)."""

    def __init__(self, backend: Any, config: VLMJudgeConfig | None = None) -> None:
        self.backend = backend
        self.config = config or VLMJudgeConfig()
        self.unparsable_count = 0

    def _request(self, frames: np.ndarray, episode: dict[str, Any]) -> tuple[np.ndarray, str]:
        prompt = str(episode.get("prompt", "")).strip()
        if not prompt:
            raise ValueError(f"episode {episode.get('episode_index')!r} has no prompt")
        success = str(episode.get("success_criterion") or "the task is done").strip()
        sheet = contact_sheet(frames, self.config.num_frames, self.config.tile_px)
        n = min(self.config.num_frames, frames.shape[0])
        return sheet, JUDGE_INSTRUCTION.format(n=n, prompt=prompt, success=success)

    def verdict_from_text(self, text: str) -> JudgeVerdict:
        try:
            answer = parse_judge_answer(text)
        except ValueError as exc:
            self.unparsable_count += 1
            logger.info("unparsable judge answer: %s", exc)
            return JudgeVerdict(False, 0.0, "unparsable", {"error": str(exc), "raw": text[:500]})
        w = self.config.success_weight
        score = w * float(answer["success"]) + (1 - w) * answer["instruction_following"] / 10
        return JudgeVerdict(
            answer["success"],
            score,
            answer["reason"] or "vlm",
            {
                "instruction_following": answer["instruction_following"],
                "physics": answer["physics"],
                "raw": text[:500],
            },
        )

    def judge(self, frames: np.ndarray, episode: dict[str, Any]) -> JudgeVerdict:
        return self.judge_many([frames], [episode])[0]

    def judge_many(
        self, videos: Sequence[np.ndarray], episodes: Sequence[dict[str, Any]]
    ) -> list[JudgeVerdict]:
        """Batched: one backend call for all videos."""
        if len(videos) != len(episodes):
            raise ValueError(f"{len(videos)} videos for {len(episodes)} episodes")
        requests = [self._request(f, e) for f, e in zip(videos, episodes, strict=True)]
        texts = self.backend.generate([r[0] for r in requests], [r[1] for r in requests])
        return [self.verdict_from_text(t) for t in texts]
