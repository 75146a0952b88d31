"""IDM training samples from any LeRobotDataset v3 with the robot's joint space.

The datasets we train on here are small (thousands of 64 px frames), so every episode is
decoded once into memory and batches are sliced from tensors: no per-sample video seeking,
which would dominate a CPU training step.

A sample at control step t (``frame_stride`` = s, ``num_input_frames`` = k)::

    frames  : video frames t-(k-2)s, ..., t, t+s      (clamped to the episode start)
    state   : observation.state at t                   (J,) rad
    actions : action at t, ..., t+s-1                  (s, J) rad, absolute targets
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from executor_core.config_cli import require_local_dataset
from executor_core.frames import center_crop_resize
from inverse_dynamics.configuration_idm import IDMConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeArrays:
    episode_index: int
    frames: torch.Tensor  # (L, 3, S, S) uint8
    state_rad: torch.Tensor  # (L, J) float32
    action_rad: torch.Tensor  # (L, J) float32


def _joint_order(names: object, joint_names: tuple[str, ...], key: str) -> list[int] | None:
    """Column permutation mapping the dataset's joint order onto ours (None = identity)."""
    if not isinstance(names, list | tuple) or set(names) != set(joint_names):
        logger.warning(
            "%s names %r are not the joints %r; assuming the same order", key, names, joint_names
        )
        return None
    return [list(names).index(n) for n in joint_names]


def load_episodes(
    root: str | Path,
    config: IDMConfig,
    episodes: list[int] | None = None,
    image_key: str = "observation.images.scene",
    repo_id: str = "local/dataset",
) -> list[EpisodeArrays]:
    """Decode the chosen episodes of a local LeRobotDataset into memory."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset  # heavy import, only here
    from lerobot.datasets.video_utils import decode_video_frames

    root = require_local_dataset(root)  # before lerobot, which would try the Hub
    ds = LeRobotDataset(repo_id, root=root, episodes=episodes, video_backend="pyav")
    features = ds.meta.features
    for key in (image_key, "observation.state", "action"):
        if key not in features:
            raise KeyError(f"dataset {root} has no feature {key!r}; it has {sorted(features)}")
    for key in ("observation.state", "action"):
        if tuple(features[key]["shape"]) != (config.num_joints,):
            raise ValueError(
                f"{key} has shape {features[key]['shape']!r}, the IDM expects "
                f"({config.num_joints},) for joints {config.joint_names}"
            )
    state_order = _joint_order(
        features["observation.state"].get("names"), config.joint_names, "observation.state"
    )
    action_order = _joint_order(features["action"].get("names"), config.joint_names, "action")
    if features[image_key]["dtype"] != "video":
        raise ValueError(f"{image_key} must be a video feature, got {features[image_key]['dtype']}")

    table = ds.hf_dataset.with_format("numpy")[:]
    episode_col = np.asarray(table["episode_index"])
    fps = ds.meta.fps
    chosen = sorted(set(episode_col.tolist()))
    out: list[EpisodeArrays] = []
    for ep in chosen:
        rows = np.flatnonzero(episode_col == ep)
        rows = rows[np.argsort(np.asarray(table["frame_index"])[rows])]
        state = np.asarray(table["observation.state"])[rows].astype(np.float32)
        action = np.asarray(table["action"])[rows].astype(np.float32)
        if state_order is not None:
            state, action = state[:, state_order], action[:, action_order]
        meta = ds.meta.episodes[int(ep)]
        start_s = float(meta[f"videos/{image_key}/from_timestamp"])
        timestamps_s = [start_s + i / fps for i in range(len(rows))]
        video_path = ds.root / ds.meta.get_video_file_path(int(ep), image_key)
        frames = decode_video_frames(
            video_path, timestamps_s, ds.tolerance_s, backend="pyav", return_uint8=True
        )  # (L, 3, H, W) uint8
        if frames.shape[-1] != config.image_size_px or frames.shape[-2] != config.image_size_px:
            hwc = frames.permute(0, 2, 3, 1).numpy()
            frames = torch.from_numpy(
                np.stack([center_crop_resize(f, config.image_size_px) for f in hwc])
            ).permute(0, 3, 1, 2)
        out.append(
            EpisodeArrays(
                int(ep), frames.contiguous(), torch.from_numpy(state), torch.from_numpy(action)
            )
        )
    logger.info(
        "loaded %d episodes (%d frames) from %s",
        len(out),
        sum(e.frames.shape[0] for e in out),
        root,
    )
    return out


def split_episodes(
    episode_indices: list[int], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Deterministic held-out split by episode (never by frame: neighbouring frames of one
    episode are near-duplicates and would leak)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    rng = np.random.default_rng(seed)
    shuffled = list(rng.permutation(sorted(episode_indices)))
    n_val = round(len(shuffled) * val_fraction)
    if val_fraction > 0 and n_val == 0 and len(shuffled) > 1:
        n_val = 1
    return sorted(int(e) for e in shuffled[n_val:]), sorted(int(e) for e in shuffled[:n_val])


class TransitionSampler:
    """Random batches of IDM samples from in-memory episodes."""

    def __init__(self, episodes: list[EpisodeArrays], config: IDMConfig) -> None:
        self.config = config
        s = config.frame_stride
        self.frames = torch.cat([e.frames for e in episodes])  # (N, 3, S, S) uint8
        self.state_rad = torch.cat([e.state_rad for e in episodes])  # (N, J)
        self.action_rad = torch.cat([e.action_rad for e in episodes])  # (N, J)
        starts, valid = [], []
        offset = 0
        for e in episodes:
            n = e.frames.shape[0]
            for t in range(n - s):  # t + s must still be a frame of this episode
                valid.append(offset + t)
                starts.append(offset)
            offset += n
        if not valid:
            raise ValueError(f"no episode is longer than frame_stride={s} steps")
        self.index = torch.tensor(valid)  # (M,) global step t of each sample
        self.episode_start = torch.tensor(starts)  # (M,) global index of its episode start

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def gather(self, sample_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> frames (B, k, 3, S, S) uint8, state (B, J) rad, actions (B, s, J) rad."""
        c = self.config
        t = self.index[sample_ids]  # (B,)
        start = self.episode_start[sample_ids]
        offsets = torch.arange(2 - c.num_input_frames, 2) * c.frame_stride  # (k,)
        frame_idx = torch.maximum(t[:, None] + offsets[None], start[:, None])
        action_idx = t[:, None] + torch.arange(c.frame_stride)[None]
        return self.frames[frame_idx], self.state_rad[t], self.action_rad[action_idx]

    def sample(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = torch.randint(len(self), (batch_size,), generator=generator)
        return self.gather(ids)

    def statistics(self) -> dict[str, torch.Tensor]:
        """Per-joint mean/std (rad) of state and action for the model's normalisation."""
        return {
            "state_mean_rad": self.state_rad.mean(0),
            "state_std_rad": self.state_rad.std(0),
            "action_mean_rad": self.action_rad.mean(0),
            "action_std_rad": self.action_rad.std(0),
        }


class CorrectionSampler:
    """Random batches from a corrections file (``executor-idm-corrections``): (current,
    goal) frame pairs visited in closed loop, labelled with the expert's targets."""

    def __init__(self, paths: list[Path], config: IDMConfig) -> None:
        if config.num_input_frames != 2:
            raise ValueError(
                f"corrections are (current, goal) pairs: num_input_frames must be 2, got "
                f"{config.num_input_frames!r}"
            )
        frames, state, actions = [], [], []
        for path in paths:
            with np.load(path, allow_pickle=False) as data:
                f, q, a = data["frames"], data["state_rad"], data["actions_rad"]
            expected = (2, 3, config.image_size_px, config.image_size_px)
            if f.shape[1:] != expected or a.shape[1:] != (config.frame_stride, config.num_joints):
                raise ValueError(
                    f"{path}: frames {f.shape[1:]!r} / actions {a.shape[1:]!r} do not fit the "
                    f"IDM's {expected!r} / ({config.frame_stride}, {config.num_joints})"
                )
            frames.append(torch.from_numpy(f))
            state.append(torch.from_numpy(q.astype(np.float32)))
            actions.append(torch.from_numpy(a.astype(np.float32)))
            logger.info("loaded %d correction samples from %s", f.shape[0], path)
        self.frames = torch.cat(frames)  # (N, 2, 3, S, S) uint8
        self.state_rad = torch.cat(state)  # (N, J)
        self.action_rad = torch.cat(actions)  # (N, s, J)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def sample(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = torch.randint(len(self), (batch_size,), generator=generator)
        return self.frames[ids], self.state_rad[ids], self.action_rad[ids]
