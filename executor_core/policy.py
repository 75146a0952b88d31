"""The policy interface of the goal runner: a video model imagines, an IDM turns frames
into action chunks.

camera image + prompt --VideoModel--> imagined frames (T, H', W', 3)
--InverseDynamics--> one ActionChunk per consecutive frame pair --chain--> JointTrajectory.

That is the *open-loop* use of the IDM: the whole trajectory is fixed before the arm moves.
In *closed loop* (``idm_mode="closed_loop"``) the caller tracks the imagined video instead:
for each goal frame (``goal_frames``) it asks the IDM for one chunk from the camera frame
and joint state measured now (``chunk_towards``), executes it, and repeats, so drift is
corrected every ``frame_stride`` control steps rather than accumulating over the video.

The two models are small Protocols, so the Executor pipeline and the IDM plug in without
this module knowing them (``executor_core.test_doubles`` has tiny random ones).

Several imagined videos per segment (``GoalRunnerConfig.num_candidates``): a ``VideoCritic``
reads each one (the imagined frames and the prompt, nothing of the scene's state) and the
runner tracks the one it rates best (``best_candidate``).

The goal runner's other mode drives a visuomotor policy instead of the two models
(``ChunkPolicy``: the latest observation and the prompt -> the next action chunk), e.g. a
LeRobot policy through ``visuomotor_policy.LeRobotChunkPolicy``; ``chunk_in_order`` puts
its chunk into the robot's joint order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

import numpy as np

from executor_core.chunks import chain_chunks
from executor_core.frames import center_crop_resize
from executor_core.types import ActionChunk, JointTrajectory, Observation

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


@dataclass(frozen=True)
class Critique:
    """A critic's reading of one imagined video."""

    accepted: bool  # the critic believes the video shows the task done, physically
    score: float  # higher is better; compared only between videos of one segment
    reason: str = ""


class VideoCritic(Protocol):
    def critique(self, video: np.ndarray, prompt: str) -> Critique:
        """(T, H, W, 3) uint8 imagined frames + the task prompt -> a Critique. A prompt the
        critic cannot read is a ValueError naming it."""
        ...


def best_candidate(critiques: Sequence[Critique]) -> int:
    """The index of the best video: accepted before rejected, then the higher score, then
    the earlier one (the first candidate is what a single imagining would have tracked)."""
    if not critiques:
        raise ValueError("no candidates to choose from")
    return max(range(len(critiques)), key=lambda i: (critiques[i].accepted, critiques[i].score, -i))


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


class ChunkPolicy(Protocol):
    """A visuomotor policy: the latest observation (+ the task prompt) -> the next action chunk."""

    def reset(self) -> None:
        """Forget what the last goal left behind (queued actions, observation history)."""
        ...

    def next_chunk(self, observation: Observation, prompt: str) -> ActionChunk:
        """(H, J) absolute joint targets in rad at ``control_rate_hz``, first row one control
        period ahead of the observation; joints named (any order of the robot's joints)."""
        ...


def chunk_in_order(chunk: ActionChunk, joint_names: tuple[str, ...]) -> ActionChunk:
    """The chunk with its columns in ``joint_names`` order; a ValueError naming what differs."""
    if tuple(chunk.joint_names) == tuple(joint_names):
        return chunk
    missing = [n for n in joint_names if n not in chunk.joint_names]
    extra = [n for n in chunk.joint_names if n not in joint_names]
    if missing or extra:
        raise ValueError(
            f"the policy's chunk has joints {list(chunk.joint_names)}; the robot's are "
            f"{list(joint_names)} (missing {missing}, unknown {extra})"
        )
    columns = [chunk.joint_names.index(n) for n in joint_names]
    return ActionChunk(chunk.joint_positions_rad[:, columns], chunk.control_rate_hz, joint_names)


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


def trajectory_from_video(
    video: np.ndarray,  # (T, H', W', 3) uint8 imagined frames
    idm: InverseDynamics,
    joint_names: tuple[str, ...],
    joint_positions_rad: np.ndarray | None = None,  # (J,) measured now
) -> JointTrajectory:
    """Open loop: one IDM chunk per consecutive frame pair, chained into one trajectory."""
    chunks = idm.predict(video, joint_positions_rad)
    if len(chunks) != video.shape[0] - 1:
        raise ValueError(
            f"IDM returned {len(chunks)} chunks for {video.shape[0]} frames; expected "
            f"{video.shape[0] - 1} (one per consecutive pair)"
        )
    return chain_chunks(chunks, joint_names)


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
