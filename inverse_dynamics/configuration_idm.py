"""Configuration of the inverse-dynamics model (IDM).

The IDM sees ``num_input_frames`` consecutive *video* frames (spaced ``frame_stride`` control
steps apart) and optionally the current joint state, and predicts ``frame_stride`` rows of
absolute joint-position targets: the control steps between the first two frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from executor_core.robot_description import RobotDescription, default_robot_path

EncoderKind = Literal["conv", "resnet18"]
HeadKind = Literal["regression", "flow"]


def _so101_joint_names() -> tuple[str, ...]:
    return RobotDescription.from_yaml(default_robot_path()).joint_names


@dataclass(frozen=True)
class IDMConfig:
    """Architecture and I/O contract of one IDM checkpoint (saved as ``config.json``)."""

    joint_names: tuple[str, ...] = field(default_factory=_so101_joint_names)
    image_size_px: int = 64  # square side after executor_core.frames.center_crop_resize
    num_input_frames: int = 2  # consecutive video frames (k >= 2)
    frame_stride: int = 4  # control steps between video frames = rows of one action chunk
    control_rate_hz: float = 10.0  # spacing of the predicted rows
    use_state: bool = True  # take the current joint state as an extra input
    # Training drops the state with this probability so that predict() also works without it.
    state_dropout_prob: float = 0.2
    encoder: EncoderKind = "conv"
    conv_channels: tuple[int, ...] = (32, 64, 128, 128)  # one stride-2 stage per entry
    # Also feed the differences of consecutive frames (conv encoder): the motion the IDM
    # must read is then explicit for the first layer instead of learnt from raw pixels.
    frame_differences: bool = True
    # 3x3 convs per stage (the first has stride 2). 1 keeps the default model trainable on a
    # shared CPU core (~14 M MACs per sample); 2 triples the cost.
    convs_per_stage: int = 1
    # Local safetensors file with ImageNet ResNet-18 weights (encoder="resnet18" only).
    backbone_weights_path: str | None = None
    hidden_dim: int = 256
    head: HeadKind = "regression"
    flow_num_steps: int = 10  # Euler steps of the flow-matching sampler
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if len(self.joint_names) == 0 or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names must be non-empty and unique, got {self.joint_names!r}")
        if self.image_size_px < 16 or self.image_size_px % 16 != 0:
            raise ValueError(
                f"image_size_px must be a multiple of 16 and >= 16, got {self.image_size_px!r}"
            )
        if self.num_input_frames < 2:
            raise ValueError(f"num_input_frames must be >= 2, got {self.num_input_frames!r}")
        if self.frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {self.frame_stride!r}")
        if not (math.isfinite(self.control_rate_hz) and self.control_rate_hz > 0):
            raise ValueError(f"control_rate_hz must be > 0, got {self.control_rate_hz!r}")
        if not 0.0 <= self.state_dropout_prob < 1.0:
            raise ValueError(
                f"state_dropout_prob must be in [0, 1), got {self.state_dropout_prob!r}"
            )
        if self.encoder not in ("conv", "resnet18"):
            raise ValueError(f"encoder must be 'conv' or 'resnet18', got {self.encoder!r}")
        if self.encoder == "conv":
            if not self.conv_channels or any(c < 1 for c in self.conv_channels):
                raise ValueError(f"conv_channels must be positive, got {self.conv_channels!r}")
            if 2 ** len(self.conv_channels) > self.image_size_px:
                raise ValueError(
                    f"{len(self.conv_channels)} stride-2 stages need image_size_px >= "
                    f"{2 ** len(self.conv_channels)}, got {self.image_size_px!r}"
                )
        if self.convs_per_stage < 1:
            raise ValueError(f"convs_per_stage must be >= 1, got {self.convs_per_stage!r}")
        if self.hidden_dim < 1:
            raise ValueError(f"hidden_dim must be >= 1, got {self.hidden_dim!r}")
        if self.head not in ("regression", "flow"):
            raise ValueError(f"head must be 'regression' or 'flow', got {self.head!r}")
        if self.flow_num_steps < 1:
            raise ValueError(f"flow_num_steps must be >= 1, got {self.flow_num_steps!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def horizon(self) -> int:
        """Rows of one action chunk (control steps between two video frames)."""
        return self.frame_stride
