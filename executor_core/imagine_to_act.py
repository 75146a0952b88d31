"""Imagine, then act: the pure composition the executor node runs for one goal.

camera image + prompt --VideoModel--> imagined frames (T, H', W', 3)
--InverseDynamics--> one ActionChunk per consecutive frame pair --chain--> JointTrajectory.

That is the *open-loop* use of the IDM: the whole trajectory is fixed before the arm moves.
In *closed loop* (``idm_mode="closed_loop"``) the caller tracks the imagined video instead:
for each goal frame (``goal_frames``) it asks the IDM for one chunk from the camera frame
and joint state measured now (``chunk_towards``), executes it, and repeats, so drift is
corrected every ``frame_stride`` control steps rather than accumulating over the video.

The two models are small Protocols so the concrete Executor pipeline and IDM plug in
without this module knowing them. ``TinyRandomVideoModel`` / ``TinyRandomInverseDynamics``
are test doubles (random weights, tiny) that satisfy the protocols; the executor node uses
them only when no model path is given, and logs loudly that it does.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, get_args

import cv2
import numpy as np
import torch
from torch import nn

from executor_core.frames import center_crop_resize, from_model_range, to_model_range
from executor_core.types import ActionChunk, JointTrajectory

logger = logging.getLogger(__name__)

PHASE_IMAGINING = "imagining"
PHASE_CONVERTING = "converting"

IdmMode = Literal["open_loop", "closed_loop"]
IDM_MODES: tuple[str, ...] = get_args(IdmMode)


def check_idm_mode(mode: str) -> IdmMode:
    """The mode itself if known; a ValueError quoting it otherwise."""
    if mode not in IDM_MODES:
        raise ValueError(f"idm_mode must be one of {list(IDM_MODES)}, got {mode!r}")
    return mode  # type: ignore[return-value]


class VideoModel(Protocol):
    def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        """(H, W, 3) uint8 + prompt -> (T, H', W', 3) uint8 frames, frame 0 = the input."""
        ...


class InverseDynamics(Protocol):
    def predict(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> Sequence[ActionChunk]:
        """(T, H, W, 3) uint8 + (J,) state -> T-1 chunks, one per consecutive pair."""
        ...


class ClosedLoopInverseDynamics(Protocol):
    def predict_chunk(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> ActionChunk:
        """(2, H, W, 3) uint8 [current frame, goal frame] + measured (J,) state -> 1 chunk."""
        ...


@dataclass(frozen=True)
class ImaginedPlan:
    video: np.ndarray  # (T, H', W', 3) uint8
    trajectory: JointTrajectory
    timings_s: dict[str, float] = field(default_factory=dict)  # imagine_s, convert_s


def chain_chunks(
    chunks: Sequence[ActionChunk], joint_names: tuple[str, ...], start_time_s: float = 0.0
) -> JointTrajectory:
    """Concatenate chunks into one trajectory; row k of the result is at (k+1)/rate.

    The first row is one control period after now: the arm starts from where it is and
    reaches the first target in 1/rate s, as the IDM was trained (state t -> target t+1).
    """
    if not chunks:
        raise ValueError("no action chunks to chain (video had fewer than 2 frames?)")
    rates = {c.control_rate_hz for c in chunks}
    if len(rates) != 1:
        raise ValueError(f"chunks disagree on control_rate_hz: {sorted(rates)!r}")
    for i, c in enumerate(chunks):
        if tuple(c.joint_names) != tuple(joint_names):
            raise ValueError(f"chunk {i} joint names {c.joint_names!r} differ from {joint_names!r}")
    rate_hz = rates.pop()
    positions = np.concatenate([c.joint_positions_rad for c in chunks], axis=0)
    positions = positions.astype(np.float64)  # (N, J)
    times = start_time_s + np.arange(1, positions.shape[0] + 1, dtype=np.float64) / rate_hz
    return JointTrajectory(
        joint_names=tuple(joint_names),
        positions_rad=positions,
        time_from_start_s=times,
        metadata={"control_rate_hz": f"{rate_hz:g}", "chunks": str(len(chunks))},
    )


def imagine_video(
    image_rgb: np.ndarray,  # (H, W, 3) uint8
    prompt: str,
    video_model: VideoModel,
    seed: int = 0,
    on_phase: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Run the video model on validated inputs; (T >= 2, H', W', 3) uint8, frame 0 = now."""
    if not prompt.strip():
        raise ValueError(f"task prompt must not be empty, got {prompt!r}")
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(
            f"image_rgb must be (H, W, 3) uint8, got {image_rgb.shape!r} {image_rgb.dtype}"
        )
    if on_phase:
        on_phase(PHASE_IMAGINING)
    video = np.asarray(video_model(image_rgb, prompt, seed))
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(
            f"video model returned {video.shape!r} {video.dtype}, expected (T, H, W, 3) uint8"
        )
    if video.shape[0] < 2:
        raise ValueError(f"video model returned {video.shape[0]} frame(s); need >= 2")
    return video


def imagine_to_act(
    image_rgb: np.ndarray,  # (H, W, 3) uint8
    prompt: str,
    video_model: VideoModel,
    idm: InverseDynamics,
    joint_names: tuple[str, ...],
    joint_positions_rad: np.ndarray | None = None,  # (J,)
    seed: int = 0,
    on_phase: Callable[[str], None] | None = None,
) -> ImaginedPlan:
    """Run the video model then the IDM; returns the video and the joint trajectory."""
    t0 = time.perf_counter()
    video = imagine_video(image_rgb, prompt, video_model, seed, on_phase)
    t1 = time.perf_counter()
    if on_phase:
        on_phase(PHASE_CONVERTING)
    chunks = idm.predict(video, joint_positions_rad)
    if len(chunks) != video.shape[0] - 1:
        raise ValueError(
            f"IDM returned {len(chunks)} chunks for {video.shape[0]} frames; expected "
            f"{video.shape[0] - 1} (one per consecutive pair)"
        )
    trajectory = chain_chunks(chunks, joint_names)
    t2 = time.perf_counter()
    logger.info(
        "imagined %d frames in %.3f s, %d trajectory points in %.3f s",
        video.shape[0],
        t1 - t0,
        trajectory.positions_rad.shape[0],
        t2 - t1,
    )
    return ImaginedPlan(video, trajectory, {"imagine_s": t1 - t0, "convert_s": t2 - t1})


def goal_frames(video: np.ndarray) -> np.ndarray:
    """The frames a closed-loop run tracks, in order: every imagined frame after the first.

    Frame 0 is the camera image the video was imagined from, i.e. where the arm already is;
    the result is (T-1, H', W', 3), one goal (and one IDM chunk) per ``frame_stride`` steps.
    """
    if video.ndim != 4 or video.shape[0] < 2 or video.shape[-1] != 3:
        raise ValueError(f"need an imagined video (T >= 2, H, W, 3), got {video.shape!r}")
    return video[1:]


def chunk_towards(
    idm: ClosedLoopInverseDynamics,
    current_rgb: np.ndarray,  # (H, W, 3) uint8, the camera frame now
    goal_rgb: np.ndarray,  # (H', W', 3) uint8, one imagined frame
    joint_names: tuple[str, ...],
    joint_positions_rad: np.ndarray | None = None,  # (J,) measured now
) -> JointTrajectory:
    """One closed-loop step: the IDM chunk from where the arm is to the goal frame.

    The camera frame gets the video model's own input preprocessing (centre crop, resize
    to the imagined resolution) so that both frames the IDM compares look alike. The
    chunk is returned as a trajectory starting now, first row one control period ahead.
    """
    if goal_rgb.ndim != 3 or goal_rgb.shape[0] != goal_rgb.shape[1]:
        raise ValueError(f"goal frame must be a square (S, S, 3) frame, got {goal_rgb.shape!r}")
    current = center_crop_resize(current_rgb, goal_rgb.shape[0])
    chunk = idm.predict_chunk(np.stack([current, goal_rgb]), joint_positions_rad)
    return chain_chunks([chunk], joint_names)


def return_home(
    joint_names: tuple[str, ...],
    joint_positions_rad: np.ndarray,  # (J,) measured now
    home_rad: np.ndarray,  # (J,) the pose every training clip starts from
    speed_rad_s: float,
    rate_hz: float,
    keep_joints: tuple[str, ...] = ("gripper",),
    tolerance_rad: float = 0.05,
) -> JointTrajectory | None:
    """A straight joint-space move back to the home pose before re-imagining, or None.

    The video models learn from clips that start with the arm at home; a video imagined
    from a camera image with the arm elsewhere is out of their distribution (in the sim
    evaluation such re-imagined videos were mostly noise). Joints in ``keep_joints`` hold
    their measured position, so a grasped object stays in the hand. The fastest joint moves
    at ``speed_rad_s``; one row per control period (``rate_hz``). None when every moving
    joint is already within ``tolerance_rad`` of home.
    """
    q = np.asarray(joint_positions_rad, dtype=np.float64)
    home = np.asarray(home_rad, dtype=np.float64)
    if q.shape != (len(joint_names),) or home.shape != q.shape:
        raise ValueError(
            f"need (J,) = ({len(joint_names)},) positions and home, got {q.shape!r}, {home.shape!r}"
        )
    if not (speed_rad_s > 0 and rate_hz > 0):
        raise ValueError(f"need speed_rad_s, rate_hz > 0; got {speed_rad_s!r}, {rate_hz!r}")
    unknown = sorted(set(keep_joints) - set(joint_names))
    if unknown:
        raise ValueError(f"keep_joints {unknown!r} are not joints of {joint_names!r}")
    moving = np.array([name not in keep_joints for name in joint_names])
    delta = np.where(moving, home - q, 0.0)
    largest = float(np.abs(delta).max())
    if largest <= tolerance_rad:
        return None
    n = int(np.ceil(largest / (speed_rad_s / rate_hz)))
    fraction = np.arange(1, n + 1)[:, None] / n  # (N, 1)
    return JointTrajectory(
        joint_names=tuple(joint_names),
        positions_rad=q[None, :] + fraction * delta[None, :],
        time_from_start_s=np.arange(1, n + 1) / rate_hz,
        metadata={"kind": "return_home"},
    )


def concatenate_trajectories(parts: Sequence[JointTrajectory]) -> JointTrajectory:
    """Back-to-back concatenation: part i+1's clock starts where part i ends.

    Records what a closed-loop segment commanded as one trajectory; the wall-clock gaps
    between the chunks (prediction, sending) are not in it.
    """
    if not parts:
        raise ValueError("no trajectories to concatenate")
    names = tuple(parts[0].joint_names)
    offsets = np.cumsum([0.0] + [p.duration_s for p in parts[:-1]])
    for i, p in enumerate(parts):
        if tuple(p.joint_names) != names:
            raise ValueError(f"trajectory {i} joint names {p.joint_names!r} differ from {names!r}")
    return JointTrajectory(
        joint_names=names,
        positions_rad=np.concatenate([p.positions_rad for p in parts]),
        time_from_start_s=np.concatenate(
            [p.time_from_start_s + off for p, off in zip(parts, offsets, strict=True)]
        ),
        metadata={"chunks": str(len(parts))},
    )


def save_video_mp4(frames: np.ndarray, path: Path, fps: float) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames to mp4 atomically (temp file, then rename)."""
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".mp4")
    os.close(fd)
    try:
        h, w = frames.shape[1:3]
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise OSError(f"OpenCV could not open an mp4 writer for {tmp}")
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV wants BGR
        writer.release()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class TinyRandomVideoModel(nn.Module):
    """Test double of the Executor pipeline: random conv weights, no training.

    Frame k is the input frame plus k times a small learned-free perturbation, so the
    video is deterministic in (image, prompt, seed) and changes over time.
    """

    def __init__(self, size_px: int = 32, num_frames: int = 5, width: int = 8) -> None:
        super().__init__()
        if size_px < 8 or num_frames < 2:
            raise ValueError(
                f"need size_px >= 8 and num_frames >= 2, got {size_px!r}, {num_frames!r}"
            )
        self.size_px, self.num_frames = size_px, num_frames
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, 3, 3, padding=1)
        )

    @torch.no_grad()
    def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        gen = torch.Generator().manual_seed(int(seed) + sum(map(ord, prompt)))
        x = torch.from_numpy(to_model_range(center_crop_resize(image_rgb, self.size_px)))
        x = x.permute(2, 0, 1)[None]  # (1, 3, S, S)
        frames = [x]
        for _ in range(self.num_frames - 1):
            noise = 0.05 * torch.randn(x.shape, generator=gen)
            frames.append(torch.tanh(frames[-1] + 0.1 * self.net(frames[-1]) + noise))
        video = torch.cat(frames).permute(0, 2, 3, 1).numpy()  # (T, S, S, 3)
        return from_model_range(video)


class TinyRandomInverseDynamics(nn.Module):
    """Test double of the IDM: a random MLP on a frame pair.

    Its output is a bounded offset (tanh x ``max_step_rad``) from the current joint
    state, so random weights still give a trajectory within the arm's velocity limit.
    """

    def __init__(
        self,
        joint_names: tuple[str, ...],
        home_rad: np.ndarray,  # (J,)
        chunk_size: int = 4,
        control_rate_hz: float = 10.0,
        size_px: int = 16,
        max_step_rad: float = 0.02,
    ) -> None:
        super().__init__()
        self.joint_names = tuple(joint_names)
        self.home_rad = np.asarray(home_rad, dtype=np.float64)
        self.chunk_size, self.control_rate_hz = chunk_size, control_rate_hz
        self.size_px, self.max_step_rad = size_px, max_step_rad
        n = len(self.joint_names)
        self.net = nn.Sequential(
            nn.Linear(2 * 3 * size_px * size_px, 32), nn.SiLU(), nn.Linear(32, chunk_size * n)
        )

    @torch.no_grad()
    def predict(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> list[ActionChunk]:
        n = len(self.joint_names)
        q = self.home_rad if joint_positions_rad is None else np.asarray(joint_positions_rad)
        small = np.stack([center_crop_resize(f, self.size_px) for f in frames])
        x = torch.from_numpy(to_model_range(small)).flatten(1)  # (T, 3*S*S)
        chunks = []
        for t in range(frames.shape[0] - 1):
            out = self.net(torch.cat([x[t], x[t + 1]])[None]).reshape(self.chunk_size, n)
            steps = self.max_step_rad * torch.tanh(out).numpy().astype(np.float64)
            targets = q[None] + np.cumsum(steps, axis=0)  # (H, J)
            q = targets[-1]
            chunks.append(
                ActionChunk(targets.astype(np.float32), self.control_rate_hz, self.joint_names)
            )
        return chunks

    def predict_chunk(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> ActionChunk:
        """Closed-loop use, as ``InverseDynamicsPolicy.predict_chunk``: [current, goal]."""
        if frames.ndim != 4 or frames.shape[0] != 2:
            raise ValueError(f"predict_chunk needs (2, H, W, 3) frames, got {frames.shape!r}")
        return self.predict(frames, joint_positions_rad)[0]
