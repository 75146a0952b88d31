"""Training clips for the video models: LeRobotDataset v3 episodes -> a compact clip cache.

A clip is what the model imagines: ``num_frames`` frames taken every ``frame_stride``
dataset steps from the start of an episode (docs/ARCHITECTURE.md), centre-cropped and
resized to ``size_px``, with the episode's text (``solution`` for the Demonstrator,
``prompt`` for the Executor) from ``meta/executor_episodes.jsonl``. An episode shorter than
the clip is padded with its last frame (the world stays still once the task is done).

The cache is one ``.npz`` (compressed, loaded with ``allow_pickle=False``) holding
``frames`` (N, T, S, S, 3) uint8, ``episode_index`` (N,), ``text_id`` (N,) and
``text_embeds`` (U, L, D) float16 for the U distinct texts, and optionally ``valid_frames``
(N,): how many leading frames of each clip show the task in motion, the rest the world held
still or padding (caches without it count every frame), and ``source``: what a cache built
from datasets was made of (:func:`cache_source`), so that a trainer can refuse a stale one
(caches without it, merged or packed by hand, are not checked). Decoding videos and running the
text encoder happen once, and the file is small enough to carry to a GPU machine that has
neither lerobot nor the text encoder. Self-distillation writes generated videos with
:func:`write_clip_cache` in the same format.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from executor_core.atomic_io import setting_differences, write_npz_atomic
from executor_core.config_cli import (
    cli_main,
    configure_cli_logging,
    parse_config,
    require_local_dataset,
)
from executor_core.frames import center_crop_resize
from video_models.configuration_executor import MODEL_PRESETS, ExecutorModelConfig
from video_models.modeling_executor import build_text_components
from video_models.text_encoding import encode_text

logger = logging.getLogger(__name__)

EPISODES_FILE = Path("meta") / "executor_episodes.jsonl"


@dataclass
class ClipCache:
    frames: np.ndarray  # (N, T, S, S, 3) uint8
    episode_index: np.ndarray  # (N,) int64
    text_id: np.ndarray  # (N,) int64, row of text_embeds
    text_embeds: np.ndarray  # (U, L, D) float16, zero past each text's last token
    texts: list[str]  # (U,) the distinct texts
    text_field: str
    # (N,) int64 in [1, T]: each clip's leading frames that show motion, the rest the world
    # held still (rendered, or padding past the episode's end); None: every frame counts
    valid_frames: np.ndarray | None = None
    # what a cache built from datasets was made of (cache_source); None: not recorded
    source: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        n = self.frames.shape[0]
        if self.frames.ndim != 5 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(
                f"frames must be (N, T, S, S, 3) uint8, got {self.frames.shape!r} "
                f"{self.frames.dtype!r}"
            )
        if self.episode_index.shape != (n,) or self.text_id.shape != (n,):
            raise ValueError(
                f"episode_index {self.episode_index.shape!r} / text_id "
                f"{self.text_id.shape!r} must be ({n},)"
            )
        if len(self.texts) != self.text_embeds.shape[0]:
            raise ValueError(f"{len(self.texts)} texts for {self.text_embeds.shape[0]} embeddings")
        if n and (self.text_id.min() < 0 or self.text_id.max() >= len(self.texts)):
            raise ValueError(f"text_id out of range [0, {len(self.texts)})")
        if self.valid_frames is not None:
            t = self.frames.shape[1]
            if self.valid_frames.shape != (n,):
                raise ValueError(f"valid_frames {self.valid_frames.shape!r} must be ({n},)")
            if n and (self.valid_frames.min() < 1 or self.valid_frames.max() > t):
                raise ValueError(
                    f"valid_frames must be in [1, {t}], got "
                    f"[{self.valid_frames.min()}, {self.valid_frames.max()}]"
                )

    def motion_frames(self) -> np.ndarray:
        """(N,) each clip's frames of motion (all T when the cache does not say)."""
        if self.valid_frames is None:
            return np.full(len(self), self.frames.shape[1], dtype=np.int64)
        return self.valid_frames

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def subset(self, episodes: set[int]) -> ClipCache:
        keep = np.array([int(e) in episodes for e in self.episode_index], dtype=bool)
        return ClipCache(
            self.frames[keep],
            self.episode_index[keep],
            self.text_id[keep],
            self.text_embeds,
            self.texts,
            self.text_field,
            None if self.valid_frames is None else self.valid_frames[keep],
            self.source,
        )


def read_executor_episodes(dataset_root: str | Path) -> list[dict]:
    """The per-episode task records (prompt, solution, scene, ...) written by the simulator."""
    path = Path(dataset_root) / EPISODES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {EPISODES_FILE} in dataset {str(dataset_root)!r}")
    records = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not JSON: {exc}") from exc
    return records


def split_episodes(
    episode_indices: list[int], heldout_fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """(train, held_out) episode indices, the same for every caller with the same seed."""
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction!r}")
    ordered = sorted(int(e) for e in episode_indices)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ordered))
    n_held = round(len(ordered) * heldout_fraction)
    held = sorted(ordered[i] for i in perm[:n_held])
    held_set = set(held)
    return [e for e in ordered if e not in held_set], held


def clip_frame_indices(episode_length: int, num_frames: int, frame_stride: int) -> list[int]:
    """Dataset step of each clip frame, padded with the last step for short episodes."""
    if episode_length <= 0:
        raise ValueError(f"episode_length must be > 0, got {episode_length!r}")
    return [min(k * frame_stride, episode_length - 1) for k in range(num_frames)]


def clip_valid_frames(episode_length: int, num_frames: int, frame_stride: int) -> int:
    """How many leading frames of :func:`clip_frame_indices` fall within the episode's
    ``episode_length`` steps: the rest repeat its last step (padding)."""
    if episode_length <= 0:
        raise ValueError(f"episode_length must be > 0, got {episode_length!r}")
    return min(num_frames, (episode_length - 1) // frame_stride + 1)


def extract_episode_clips(
    dataset_root: str | Path,
    episodes: list[int],
    num_frames: int,
    frame_stride: int,
    size_px: int,
    video_key: str = "observation.images.scene",
) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    """Decode the clip of each episode: ``({episode_index: (T, S, S, 3) uint8},
    {episode_index: its frames within the episode})``; the frames past an episode shorter
    than the clip repeat its last step (:func:`clip_valid_frames`)."""
    from lerobot.datasets.dataset_metadata import LeRobotDatasetMetadata
    from lerobot.datasets.video_utils import decode_video_frames

    root = require_local_dataset(dataset_root)  # before lerobot: it would try the Hub
    meta = LeRobotDatasetMetadata(f"local/{root.name}", root=root)
    if video_key not in meta.video_keys:
        raise KeyError(f"video key {video_key!r} not in dataset; has {meta.video_keys!r}")
    fps = float(meta.fps)
    clips: dict[int, np.ndarray] = {}
    within: dict[int, int] = {}
    for ep in episodes:
        record = meta.episodes[int(ep)]
        length = int(record["length"])
        steps = clip_frame_indices(length, num_frames, frame_stride)
        within[int(ep)] = clip_valid_frames(length, num_frames, frame_stride)
        if length > (num_frames - 1) * frame_stride + 1:
            logger.debug(
                "episode %d has %d steps, the clip covers the first %d",
                ep,
                length,
                (num_frames - 1) * frame_stride + 1,
            )
        start = float(record[f"videos/{video_key}/from_timestamp"])
        stamps = [start + s / fps for s in steps]
        path = root / meta.get_video_file_path(int(ep), video_key)
        frames = decode_video_frames(path, stamps, tolerance_s=0.5 / fps, return_uint8=True)
        frames_np = frames.permute(0, 2, 3, 1).numpy()  # (T, H, W, 3)
        clips[int(ep)] = np.stack([center_crop_resize(f, size_px) for f in frames_np])
    return clips, within


def build_clip_cache(
    dataset_root: str | Path,
    text_field: str,
    num_frames: int,
    frame_stride: int,
    size_px: int,
    embed_texts: Callable[[list[str]], torch.Tensor],
    only_successful: bool = True,
) -> ClipCache:
    """All episodes of a dataset (successful ones by default) as a :class:`ClipCache`; its
    ``valid_frames`` mark each clip's frames within its episode (the rest are padding)."""
    records = read_executor_episodes(dataset_root)
    if only_successful:
        records = [r for r in records if r.get("success", True)]
    if not records:
        raise ValueError(f"no usable episodes in {str(dataset_root)!r}")
    for r in records:
        if not isinstance(r.get(text_field), str) or not r[text_field].strip():
            raise ValueError(
                f"episode {r.get('episode_index')!r} has no non-empty {text_field!r} text"
            )
    episodes = [int(r["episode_index"]) for r in records]
    clips, within = extract_episode_clips(dataset_root, episodes, num_frames, frame_stride, size_px)
    texts = list(dict.fromkeys(r[text_field] for r in records))
    return make_clip_cache(
        np.stack([clips[e] for e in episodes]),
        episodes,
        [r[text_field] for r in records],
        texts,
        embed_texts,
        text_field,
        valid_frames=np.asarray([within[e] for e in episodes], dtype=np.int64),
    )


def clip_cache_for_model(
    dataset_roots: Sequence[str | Path],
    text_field: str,
    model: ExecutorModelConfig,
    only_successful: bool = True,
) -> ClipCache:
    """The clips of one or more datasets as ``model`` sees them (frames, stride, size), the
    texts embedded with its text encoder; several datasets are merged in order."""
    tokenizer, encoder = build_text_components(model)

    def embed_texts(texts: list[str]) -> torch.Tensor:
        return encode_text(tokenizer, encoder, texts, model.max_text_tokens)

    source = cache_source(dataset_roots, text_field, model, only_successful)
    caches = [
        build_clip_cache(
            root,
            text_field,
            model.num_frames,
            model.frame_stride,
            model.size_px,
            embed_texts,
            only_successful=only_successful,
        )
        for root in dataset_roots
    ]
    return replace(merge_clip_caches(caches), source=source)


def cache_source(
    dataset_roots: Sequence[str | Path],
    text_field: str,
    model: ExecutorModelConfig,
    only_successful: bool = True,
) -> dict[str, Any]:
    """What :func:`clip_cache_for_model` makes a cache of: the datasets (resolved paths),
    the texts and how they are embedded, the frame stride and which episodes are kept."""
    return {
        "dataset_roots": [str(Path(r).resolve()) for r in dataset_roots],
        "text_field": text_field,
        "frame_stride": model.frame_stride,
        "text_encoder": model.text_encoder,
        "text_dim": model.text_dim,
        "max_text_tokens": model.max_text_tokens,
        "only_successful": only_successful,
    }


def source_differences(cache: ClipCache, wanted: dict[str, Any], keys: Sequence[str]) -> list[str]:
    """``keys`` on which a cache's recorded source differs from ``wanted``, as
    ``"key: cache X, wanted Y"``; none for a cache that records no source."""
    if cache.source is None:
        return []
    return setting_differences(cache.source, wanted, "cache", "wanted", keys)


def make_clip_cache(
    frames: np.ndarray,
    episodes: list[int],
    clip_texts: list[str],
    texts: list[str],
    embed_texts: Callable[[list[str]], torch.Tensor],
    text_field: str,
    valid_frames: np.ndarray | None = None,
) -> ClipCache:
    """Clips + their texts -> a cache with one embedding per distinct text;
    ``valid_frames`` (N,), when given, marks each clip's frames of motion."""
    lookup = {t: i for i, t in enumerate(texts)}
    embeds = []
    for i in range(0, len(texts), 64):  # bounded memory for many distinct texts
        embeds.append(embed_texts(texts[i : i + 64]).float().cpu())
    return ClipCache(
        frames=np.ascontiguousarray(frames, dtype=np.uint8),
        episode_index=np.asarray(episodes, dtype=np.int64),
        text_id=np.asarray([lookup[t] for t in clip_texts], dtype=np.int64),
        text_embeds=torch.cat(embeds).numpy().astype(np.float16),
        texts=list(texts),
        text_field=text_field,
        valid_frames=valid_frames,
    )


def merge_clip_caches(caches: list[ClipCache]) -> ClipCache:
    """One cache from several (datasets): episode indices are offset to stay unique."""
    if not caches:
        raise ValueError("nothing to merge")
    fields = {c.text_field for c in caches}
    if len(fields) != 1:
        raise ValueError(f"caches hold different text fields {sorted(fields)!r}")
    texts: list[str] = []
    lookup: dict[str, int] = {}
    frames, episodes, text_ids, embeds, valid = [], [], [], [], []
    offset = 0
    for cache in caches:
        remap = []
        for i, text in enumerate(cache.texts):
            if text not in lookup:
                lookup[text] = len(texts)
                texts.append(text)
                embeds.append(cache.text_embeds[i])
            remap.append(lookup[text])
        frames.append(cache.frames)
        episodes.append(cache.episode_index + offset)
        text_ids.append(np.asarray(remap, dtype=np.int64)[cache.text_id])
        valid.append(cache.motion_frames())
        offset += int(cache.episode_index.max()) + 1 if len(cache) else 0
    return ClipCache(
        np.concatenate(frames),
        np.concatenate(episodes),
        np.concatenate(text_ids),
        np.stack(embeds),
        texts,
        caches[0].text_field,
        # kept when any cache marks its frames of motion
        None if all(c.valid_frames is None for c in caches) else np.concatenate(valid),
    )


def write_clip_cache(cache: ClipCache, path: str | Path, compact: bool = False) -> Path:
    """Atomically write a cache (.npz, compressed).

    ``compact=True`` is for carrying data to a remote GPU under a size limit: frames keep
    their top 5 bits (rendered scenes are flat colours; the step of 8 levels is below the
    video codec's own noise) and text embeddings are int8 with one scale per token
    (relative error < 1 %). It roughly halves the file.
    """
    path = Path(path)
    arrays = {
        "episode_index": cache.episode_index,
        "text_id": cache.text_id,
        "texts": np.frombuffer(json.dumps(cache.texts).encode(), dtype=np.uint8),
        "text_field": np.frombuffer(cache.text_field.encode(), dtype=np.uint8),
    }
    if cache.valid_frames is not None:
        arrays["valid_frames"] = cache.valid_frames
    if cache.source is not None:
        arrays["source"] = np.frombuffer(json.dumps(cache.source).encode(), dtype=np.uint8)
    if compact:
        emb = cache.text_embeds.astype(np.float32)
        scale = np.abs(emb).max(axis=-1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        arrays["frames_5bit"] = cache.frames >> 3
        arrays["text_embeds_int8"] = np.round(emb / scale).astype(np.int8)
        arrays["text_embeds_scale"] = scale.astype(np.float32)
    else:
        arrays["frames"] = cache.frames
        arrays["text_embeds"] = cache.text_embeds
    return write_npz_atomic(path, arrays, compressed=True)


def load_clip_cache(path: str | Path) -> ClipCache:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"clip cache not found: {str(path)!r}")
    with np.load(path, allow_pickle=False) as data:
        if "frames_5bit" in data:  # compact cache: back to the middle of each 8-level step
            frames = (data["frames_5bit"] << 3) + 4
            embeds = (data["text_embeds_int8"] * data["text_embeds_scale"]).astype(np.float16)
        else:
            frames, embeds = data["frames"], data["text_embeds"]
        return ClipCache(
            frames=frames,
            episode_index=data["episode_index"],
            text_id=data["text_id"],
            text_embeds=embeds,
            texts=json.loads(bytes(data["texts"]).decode()),
            text_field=bytes(data["text_field"]).decode(),
            valid_frames=data.get("valid_frames", None),
            source=json.loads(bytes(data["source"]).decode()) if "source" in data else None,
        )


@dataclass(frozen=True)
class ClipCacheConfig:
    """``python -m video_models.clips_executor``: datasets -> one clip cache."""

    dataset_roots: tuple[Path, ...] = ()
    out: Path = Path("outputs/clips.npz")
    text_field: str = "solution"
    model_preset: str = "sim"  # frames, stride, size, text encoder and token count from here
    compact: bool = False  # 5-bit frames + int8 embeddings (to carry to a GPU machine)

    def __post_init__(self) -> None:
        if self.text_field not in ("solution", "prompt"):
            raise ValueError(f"text_field must be 'solution' or 'prompt', got {self.text_field!r}")
        if self.model_preset not in MODEL_PRESETS:
            raise ValueError(
                f"unknown model_preset {self.model_preset!r}; known: {sorted(MODEL_PRESETS)}"
            )


@cli_main("python -m video_models.clips_executor")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging("%(asctime)s %(name)s: %(message)s")
    cfg = parse_config(
        ClipCacheConfig,
        sys.argv[1:] if argv is None else argv,
        {"debug": ClipCacheConfig(model_preset="debug")},
    )
    if not cfg.dataset_roots:
        raise ValueError("give --dataset_roots=DIR1,DIR2")
    merged = clip_cache_for_model(
        cfg.dataset_roots, cfg.text_field, MODEL_PRESETS[cfg.model_preset]
    )
    write_clip_cache(merged, cfg.out, compact=cfg.compact)
    print(
        f"{len(merged)} clips, {len(merged.texts)} distinct texts -> {cfg.out} "
        f"({cfg.out.stat().st_size / 2**20:.1f} MiB)"
    )


if __name__ == "__main__":
    sys.exit(main())
