"""Videos in, probabilities out: the execution critic's input contract and its run-time use.

:func:`prepare_videos` turns (N, T, H, W, 3) uint8 videos into the model's input (frames
resampled to ``num_frames``, resized to ``image_size_px`` the way the camera frames are,
scaled to [-1, 1]). :class:`LearnedCritic` is the goal runner's critic
(``executor_core.policy.VideoCritic``): it scores each imagined candidate by the predicted
probability that the arm executes it, and accepts the ones above ``accept_threshold``.
:func:`load_labelled_videos` reads the labelled videos it is trained on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from execution_critic.configuration_critic import ExecutionCriticConfig
from execution_critic.modeling_critic import ExecutionCritic
from executor_core.frames import center_crop_resize, resample_frames, to_model_range
from executor_core.policy import Critique

logger = logging.getLogger(__name__)

LABELLED_KEYS = ("videos", "executed", "item_index", "family")


def prepare_videos(videos: np.ndarray, config: ExecutionCriticConfig) -> torch.Tensor:
    """(N, T, H, W, 3) uint8 -> (N, num_frames, 3, S, S) float32 in [-1, 1]."""
    if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != np.uint8:
        raise ValueError(
            f"expected (N, T, H, W, 3) uint8 videos, got {videos.shape} {videos.dtype}"
        )
    if videos.shape[1] < 2:
        raise ValueError(f"a video needs >= 2 frames, got {videos.shape[1]}")
    out = np.empty(
        (videos.shape[0], config.num_frames, config.image_size_px, config.image_size_px, 3),
        dtype=np.uint8,
    )
    for i, video in enumerate(videos):
        frames = resample_frames(video, config.num_frames)
        out[i] = [center_crop_resize(f, config.image_size_px) for f in frames]
    return torch.from_numpy(to_model_range(out)).permute(0, 1, 4, 2, 3).contiguous()


@torch.no_grad()
def execution_probability(
    model: ExecutionCritic, videos: np.ndarray, batch_size: int = 64
) -> np.ndarray:
    """(N, T, H, W, 3) uint8 -> (N,) probability that the arm executes each video."""
    model.eval()
    probs = []
    for start in range(0, len(videos), batch_size):
        x = prepare_videos(videos[start : start + batch_size], model.config)
        probs.append(torch.sigmoid(model(x)).numpy())
    return np.concatenate(probs) if probs else np.zeros(0, dtype=np.float32)


class LearnedCritic:
    """The goal runner's critic from an execution-critic checkpoint. It reads the imagined
    frames only; the prompt is checked (a non-empty string) but not read: the critic
    judges whether the motion can be executed, the runner already imagined it for the
    prompt."""

    def __init__(self, model: ExecutionCritic) -> None:
        self.model = model

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> LearnedCritic:
        return cls(ExecutionCritic.from_pretrained(directory))

    def critique(self, video: np.ndarray, prompt: str) -> Critique:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"the prompt must be a non-empty string, got {prompt!r}")
        p = float(execution_probability(self.model, video[None])[0])
        accepted = p >= self.model.config.accept_threshold
        return Critique(accepted, p, f"predicted execution probability {p:.3f}")


@dataclass(frozen=True)
class LabelledVideos:
    """Imagined videos with their executed labels and the item each was imagined for."""

    videos: np.ndarray  # (N, T, H, W, 3) uint8
    executed: np.ndarray  # (N,) bool
    item_index: np.ndarray  # (N,) int: candidates of one item share it
    family: np.ndarray  # (N,) str
    item_id: np.ndarray | None = None  # (N,) str: the task item each was imagined for

    def subset(self, mask: np.ndarray) -> LabelledVideos:
        ids = None if self.item_id is None else self.item_id[mask]
        return LabelledVideos(
            self.videos[mask], self.executed[mask], self.item_index[mask], self.family[mask], ids
        )


def load_labelled_videos(path: str | Path) -> LabelledVideos:
    """An ``.npz`` written by ``bench_candidate_critics.py --save_videos``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labelled videos not found: {str(path)!r}")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in LABELLED_KEYS if k not in data]
        if missing:
            raise ValueError(f"{str(path)!r} lacks {missing} (has {sorted(data.keys())})")
        ids = np.asarray(data["item_id"]) if "item_id" in data else None
        out = LabelledVideos(*(np.asarray(data[k]) for k in LABELLED_KEYS), ids)
    n = len(out.videos)
    if out.videos.ndim != 5 or n == 0 or any(len(a) != n for a in (out.executed, out.item_index)):
        raise ValueError(f"{str(path)!r}: videos {out.videos.shape} and labels do not match")
    logger.info("%s: %d videos, %d execute", path, n, int(out.executed.sum()))
    return out
