"""From camera/video frames to IDM tensors, and from IDM outputs to typed action chunks.

:class:`InverseDynamicsPolicy` is what the executor node uses::

    policy = InverseDynamicsPolicy.from_pretrained("checkpoints/idm_sim")
    chunks = policy.predict(video_uint8, joint_positions_rad=q_now)  # (T, H, W, 3) -> T-1 chunks
    trajectory = policy.to_trajectory(chunks)                         # at control_rate_hz
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from executor_core.chunks import chain_chunks
from executor_core.frames import center_crop_resize, to_model_range
from executor_core.types import ActionChunk, JointTrajectory
from inverse_dynamics.configuration_idm import IDMConfig
from inverse_dynamics.modeling_idm import InverseDynamicsModel

logger = logging.getLogger(__name__)


class IDMProcessor:
    """Validates and converts frames and joint states for one :class:`IDMConfig`."""

    def __init__(self, config: IDMConfig) -> None:
        self.config = config

    def preprocess_frames(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8, any H, W >= image_size_px -> (T, 3, S, S) float32 in [-1, 1].

        Frames smaller than the model resolution are refused rather than upsampled: that is
        a mismatch between the video model and the IDM, not something to paper over.
        """
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"frames must be a (T, H, W, 3) array, got shape {getattr(frames, 'shape', None)!r}"
            )
        if frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype!r}")
        size = self.config.image_size_px
        if min(frames.shape[1:3]) < size:
            raise ValueError(
                f"frames of {frames.shape[1]}x{frames.shape[2]} px are smaller than the IDM "
                f"resolution {size} px"
            )
        resized = np.stack([center_crop_resize(f, size) for f in frames])  # (T, S, S, 3)
        return torch.from_numpy(to_model_range(resized)).permute(0, 3, 1, 2).contiguous()

    def check_joint_positions(self, joint_positions_rad: np.ndarray) -> np.ndarray:
        """(J,) finite radians -> float32 copy."""
        q = np.asarray(joint_positions_rad, dtype=np.float64)
        if q.shape != (self.config.num_joints,):
            raise ValueError(
                f"joint_positions_rad must be ({self.config.num_joints},) in the order "
                f"{self.config.joint_names}, got shape {q.shape!r}"
            )
        if not np.isfinite(q).all():
            raise ValueError(f"joint_positions_rad must be finite, got {q!r}")
        return q.astype(np.float32)

    def windows(self, frames: torch.Tensor) -> torch.Tensor:
        """(T, 3, S, S) -> (T-1, k, 3, S, S): for each consecutive pair (i, i+1) the k frames
        ending at i+1; before the video start the first frame is repeated."""
        k = self.config.num_input_frames
        t = frames.shape[0]
        idx = torch.arange(t - 1)[:, None] + torch.arange(2 - k, 2)[None, :]  # (T-1, k)
        return frames[idx.clamp_min(0)]


class InverseDynamicsPolicy:
    """A trained IDM behind numpy/typed inputs and outputs."""

    def __init__(self, model: InverseDynamicsModel, device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.config = model.config
        self.processor = IDMProcessor(model.config)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: str | torch.device = "cpu"
    ) -> InverseDynamicsPolicy:
        return cls(InverseDynamicsModel.from_pretrained(directory), device=device)

    def _chunk(self, actions_rad: torch.Tensor) -> ActionChunk:  # (H, J)
        return ActionChunk(
            joint_positions_rad=actions_rad.cpu().numpy().astype(np.float32),
            control_rate_hz=self.config.control_rate_hz,
            joint_names=self.config.joint_names,
        )

    def predict(
        self,
        frames: np.ndarray,  # (T, H, W, 3) uint8, consecutive video frames at frame_stride
        joint_positions_rad: np.ndarray | None = None,  # (J,) radians at frames[0]
        chain_state: bool = True,
    ) -> list[ActionChunk]:
        """One chunk per consecutive frame pair (T-1 chunks of ``frame_stride`` rows).

        With a joint state, the state for pair i > 0 is the last target of chunk i-1 (the
        arm's expected position at frame i) when ``chain_state``; otherwise later pairs are
        predicted from pixels alone.
        """
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[0] < 2:
            raise ValueError(
                f"predict needs >= 2 frames as (T, H, W, 3), got shape "
                f"{getattr(frames, 'shape', None)!r}"
            )
        windows = self.processor.windows(self.processor.preprocess_frames(frames))
        windows = windows.to(self.device)  # (T-1, k, 3, S, S)
        if joint_positions_rad is None or not self.config.use_state:
            return [self._chunk(a) for a in self.model.predict_actions(windows)]
        state = torch.from_numpy(self.processor.check_joint_positions(joint_positions_rad))
        state = state.to(self.device)[None]  # (1, J)
        chunks: list[ActionChunk] = []
        for i in range(windows.shape[0]):
            use = state if (i == 0 or chain_state) else None
            actions = self.model.predict_actions(windows[i : i + 1], use)[0]  # (H, J)
            chunks.append(self._chunk(actions))
            state = actions[-1:].clone()
        return chunks

    def predict_chunk(
        self,
        frames: np.ndarray,  # (k, H, W, 3) uint8: history ... current, goal frame last
        joint_positions_rad: np.ndarray | None = None,  # (J,) radians, measured now
    ) -> ActionChunk:
        """Closed-loop use: the chunk that moves the arm from the current frame (measured
        state) to the goal frame; exactly ``num_input_frames`` frames."""
        k = self.config.num_input_frames
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[0] != k:
            raise ValueError(
                f"predict_chunk needs exactly {k} frames as (k, H, W, 3), got shape "
                f"{getattr(frames, 'shape', None)!r}"
            )
        x = self.processor.preprocess_frames(frames)[None].to(self.device)  # (1, k, 3, S, S)
        state = None
        if joint_positions_rad is not None and self.config.use_state:
            q = self.processor.check_joint_positions(joint_positions_rad)
            state = torch.from_numpy(q)[None].to(self.device)
        return self._chunk(self.model.predict_actions(x, state)[0])

    def to_trajectory(
        self, chunks: list[ActionChunk], start_delay_s: float = 0.0
    ) -> JointTrajectory:
        return chain_chunks(chunks, self.config.joint_names, start_delay_s)
