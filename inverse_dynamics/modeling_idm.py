"""The inverse-dynamics network: frames (+ joint state) -> an action chunk in radians.

Layout of one forward pass::

    frames (B, k, 3, S, S) in [-1, 1] ──encoder──▶ (B, D) ─┐
    state (B, J) rad, present (B,) ──normalise──▶ MLP ────┴─▶ trunk ─▶ head ─▶ (B, H, J) rad

Normalisation statistics (per joint mean/std of state and action) are buffers, so they are
saved in the same safetensors file as the weights and a checkpoint is self-contained.

When the state is present the head predicts a *residual* on top of it (in normalised action
units): an action chunk is mostly "where the arm is now" plus a small motion, and the
residual keeps the network from having to re-learn the identity to millirad precision.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F  # noqa: N812

from executor_core.safe_loading import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    read_model_folder,
    refuse_pickles,
    save_model_folder,
)
from inverse_dynamics.configuration_idm import IDMConfig

logger = logging.getLogger(__name__)

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "InverseDynamicsModel"]


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=math.gcd(8, channels), num_channels=channels)


class ConvEncoder(nn.Module):
    """Early fusion: the k frames are stacked on channels so the first layer already sees
    motion; the final map is flattened (not pooled) because *where* the arm is matters."""

    def __init__(self, config: IDMConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        self.frame_differences = config.frame_differences
        k = config.num_input_frames
        in_ch = 3 * k + (3 * (k - 1) if config.frame_differences else 0)
        for out_ch in config.conv_channels:
            for i in range(config.convs_per_stage):
                stride = 2 if i == 0 else 1
                layers += [
                    nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1),
                    _group_norm(out_ch),
                    nn.SiLU(),
                ]
                in_ch = out_ch
        self.convs = nn.Sequential(*layers)
        side_px = config.image_size_px // 2 ** len(config.conv_channels)
        self.proj = nn.Linear(in_ch * side_px * side_px, config.hidden_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # (B, k, 3, S, S) -> (B, D)
        x = frames.flatten(1, 2)  # (B, 3k, S, S)
        if self.frame_differences:
            x = torch.cat([x, (frames[:, 1:] - frames[:, :-1]).flatten(1, 2)], dim=1)
        x = self.convs(x)
        return F.silu(self.proj(x.flatten(1)))


class ResNetEncoder(nn.Module):
    """Late fusion with a (pretrained) ResNet-18 per frame, for GPU training on real data."""

    def __init__(self, config: IDMConfig) -> None:
        super().__init__()
        from torchvision.models import resnet18  # local import: only this preset needs it

        backbone = resnet18(weights=None)
        if config.backbone_weights_path is not None:
            path = Path(config.backbone_weights_path)
            refuse_pickles(path, hint="convert torchvision's ResNet-18 weights to safetensors")
            if path.suffix != ".safetensors":
                raise ValueError(f"backbone weights must be .safetensors, got {path}")
            if not path.is_file():
                raise FileNotFoundError(
                    f"backbone weights {path} not found; convert torchvision's ResNet-18 "
                    f"ImageNet weights to safetensors there, or set backbone_weights_path=None"
                )
            missing, unexpected = backbone.load_state_dict(load_file(str(path)), strict=False)
            logger.info("loaded backbone %s (missing %s, unexpected %s)", path, missing, unexpected)
        self.backbone = nn.Sequential(*list(backbone.children())[:-2])  # drop pool and fc
        self.reduce = nn.Conv2d(512, 32, 1)
        side_px = math.ceil(config.image_size_px / 32)
        self.proj = nn.Linear(config.num_input_frames * 32 * side_px * side_px, config.hidden_dim)
        # ImageNet statistics, expressed for inputs in [-1, 1].
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 2 - 1
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 2
        self.register_buffer("pixel_mean", mean, persistent=False)
        self.register_buffer("pixel_std", std, persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # (B, k, 3, S, S) -> (B, D)
        b, k = frames.shape[:2]
        x = (frames.flatten(0, 1) - self.pixel_mean) / self.pixel_std
        x = self.reduce(self.backbone(x))  # (B*k, 32, s, s)
        return F.silu(self.proj(x.reshape(b, k, -1).flatten(1)))


def _mlp(in_dim: int, hidden_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.SiLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden_dim, hidden_dim),
        nn.SiLU(),
        nn.Linear(hidden_dim, out_dim),
    )


def _time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:  # (B,) in [0, 1] -> (B, dim)
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
    angles = t[:, None] * 1000.0 * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class InverseDynamicsModel(nn.Module):
    """The IDM network. Inputs and outputs are in physical units (radians); normalisation
    happens inside with the stored statistics."""

    time_embed_dim = 32

    def __init__(self, config: IDMConfig) -> None:
        super().__init__()
        self.config = config
        j, h, d = config.num_joints, config.horizon, config.hidden_dim
        self.encoder: nn.Module = (
            ConvEncoder(config) if config.encoder == "conv" else (ResNetEncoder(config))
        )
        # State input: normalised joints plus a "present" bit (0 when dropped or unknown).
        self.state_mlp = nn.Sequential(nn.Linear(j + 1, d), nn.SiLU()) if config.use_state else None
        trunk_in = d * (2 if config.use_state else 1)
        self.trunk = nn.Sequential(nn.Linear(trunk_in, d), nn.SiLU())
        out_dim = h * j
        if config.head == "regression":
            self.head = _mlp(d, d, out_dim, config.dropout)
        else:
            self.head = _mlp(d + out_dim + self.time_embed_dim, d, out_dim, config.dropout)
        for name in ("state_mean", "action_mean"):
            self.register_buffer(name, torch.zeros(j))
        for name in ("state_std", "action_std"):
            self.register_buffer(name, torch.ones(j))

    # -- normalisation -----------------------------------------------------------------------
    def set_normalization(
        self,
        state_mean_rad: torch.Tensor,  # (J,)
        state_std_rad: torch.Tensor,  # (J,)
        action_mean_rad: torch.Tensor,  # (J,)
        action_std_rad: torch.Tensor,  # (J,)
    ) -> None:
        """Store dataset statistics; a std below 1e-3 rad (a joint that never moves) is
        raised to 1e-3 so that normalising never divides by ~0."""
        for name, value in (
            ("state_mean", state_mean_rad),
            ("state_std", state_std_rad),
            ("action_mean", action_mean_rad),
            ("action_std", action_std_rad),
        ):
            value = torch.as_tensor(value, dtype=torch.float32)
            if value.shape != (self.config.num_joints,) or not torch.isfinite(value).all():
                raise ValueError(
                    f"{name} must be finite with shape ({self.config.num_joints},), got {value!r}"
                )
            if name.endswith("std"):
                value = value.clamp_min(1e-3)
            getattr(self, name).copy_(value)

    def normalize_actions(self, actions_rad: torch.Tensor) -> torch.Tensor:  # (..., J)
        return (actions_rad - self.action_mean) / self.action_std

    def unnormalize_actions(self, actions_norm: torch.Tensor) -> torch.Tensor:  # (..., J)
        return actions_norm * self.action_std + self.action_mean

    # -- network -----------------------------------------------------------------------------
    def _check_inputs(self, frames: torch.Tensor, state_rad: torch.Tensor | None) -> None:
        c = self.config
        expected = (c.num_input_frames, 3, c.image_size_px, c.image_size_px)
        if frames.ndim != 5 or tuple(frames.shape[1:]) != expected:
            raise ValueError(
                f"frames must be (B, {', '.join(map(str, expected))}), got {tuple(frames.shape)!r}"
            )
        if not torch.isfinite(frames).all():
            raise ValueError("frames contain NaN or inf")
        if state_rad is not None:
            if tuple(state_rad.shape) != (frames.shape[0], c.num_joints):
                raise ValueError(
                    f"state_rad must be ({frames.shape[0]}, {c.num_joints}), "
                    f"got {tuple(state_rad.shape)!r}"
                )
            if not torch.isfinite(state_rad).all():
                raise ValueError(f"state_rad contains NaN or inf: {state_rad!r}")

    def _context(
        self, frames: torch.Tensor, state_rad: torch.Tensor | None, present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> trunk features (B, D) and the residual base (B, 1, J) in normalised units."""
        self._check_inputs(frames, state_rad)
        b, j = frames.shape[0], self.config.num_joints
        features = [self.encoder(frames)]
        base = frames.new_zeros(b, 1, j)
        if self.state_mlp is not None:
            if state_rad is None:
                state_rad = self.state_mean.expand(b, j)
                present = frames.new_zeros(b)
            mask = present.to(frames.dtype)[:, None]  # (B, 1)
            state_norm = (state_rad - self.state_mean) / self.state_std * mask
            features.append(self.state_mlp(torch.cat([state_norm, mask], dim=1)))
            base = (self.normalize_actions(state_rad) * mask)[:, None, :]
        return self.trunk(torch.cat(features, dim=1)), base

    def compute_loss(
        self,
        frames: torch.Tensor,  # (B, k, 3, S, S) float in [-1, 1]
        state_rad: torch.Tensor | None,  # (B, J) radians
        state_present: torch.Tensor,  # (B,) bool: False where the state was dropped
        actions_rad: torch.Tensor,  # (B, H, J) radians, absolute targets
    ) -> torch.Tensor:
        """Mean squared error in normalised action units (regression), or the flow-matching
        velocity error (flow)."""
        context, base = self._context(frames, state_rad, state_present)
        target = self.normalize_actions(actions_rad) - base  # (B, H, J)
        if self.config.head == "regression":
            return F.mse_loss(self.head(context).view_as(target), target)
        # Rectified flow: x_t = (1 - t) noise + t target, the head predicts target - noise.
        noise = torch.randn_like(target)
        t = torch.rand(target.shape[0], device=target.device)
        x_t = (1 - t)[:, None, None] * noise + t[:, None, None] * target
        velocity = self._flow_velocity(context, x_t, t)
        return F.mse_loss(velocity, target - noise)

    def forward(
        self,
        frames: torch.Tensor,
        state_rad: torch.Tensor | None,
        state_present: torch.Tensor,
        actions_rad: torch.Tensor,
    ) -> torch.Tensor:
        """Training forward = :meth:`compute_loss` (so DDP wrappers reduce its gradients)."""
        return self.compute_loss(frames, state_rad, state_present, actions_rad)

    def _flow_velocity(
        self, context: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:  # -> (B, H, J)
        inputs = [context, x_t.flatten(1), _time_embedding(t, self.time_embed_dim)]
        return self.head(torch.cat(inputs, dim=1)).view_as(x_t)

    @torch.no_grad()
    def predict_actions(
        self,
        frames: torch.Tensor,  # (B, k, 3, S, S) float in [-1, 1]
        state_rad: torch.Tensor | None = None,  # (B, J) radians
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:  # (B, H, J) radians, absolute joint-position targets
        b = frames.shape[0]
        present = frames.new_ones(b) if state_rad is not None else frames.new_zeros(b)
        context, base = self._context(frames, state_rad, present)
        shape = (b, self.config.horizon, self.config.num_joints)
        if self.config.head == "regression":
            pred = self.head(context).view(shape)
        else:
            pred = torch.randn(shape, generator=generator, device=frames.device)
            dt = 1.0 / self.config.flow_num_steps
            for i in range(self.config.flow_num_steps):
                t = frames.new_full((b,), i * dt)
                pred = pred + dt * self._flow_velocity(context, pred, t)
        return self.unnormalize_actions(pred + base)

    # -- persistence -------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` + ``model.safetensors`` into a temporary sibling directory,
        then swap it in, so a crash never leaves a half-written checkpoint."""
        save_model_folder(directory, self.config, self)
        logger.info("saved IDM to %s", directory)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, **config_overrides: object
    ) -> InverseDynamicsModel:
        """Load from a local directory; only safetensors weights are ever read."""
        config, state = read_model_folder(
            directory, IDMConfig, "IDM checkpoint", **config_overrides
        )
        # The pretrained backbone is already inside the state dict: do not read its file again.
        model = cls(replace(config, backbone_weights_path=None))
        model.config = config
        model.load_state_dict(state, strict=True)
        model.eval()
        return model
