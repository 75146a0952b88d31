"""Configuration of the execution critic: does the arm execute this imagined video?

The critic reads only what the robot has at run time, the imagined frames, and outputs the
probability that the IDM, tracking those frames through the goal runner, does the task.
It is trained on imagined videos labelled by executing them in the simulator
(``benchmarks/bench_candidate_critics.py --save_videos``), and ranks the goal runner's
candidates (``GoalRunnerConfig.num_candidates``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExecutionCriticConfig:
    """Architecture and I/O contract of one critic checkpoint (saved as ``config.json``)."""

    image_size_px: int = 64  # frames are resized to this square side
    num_frames: int = 16  # videos are resampled to this many evenly spaced frames
    conv_channels: tuple[int, ...] = (16, 32, 64, 64)  # one stride-2 stage per entry
    # Per frame, besides its colours: the change from the previous frame (motion, a cube
    # that jumps) and from the first frame (what has moved since the start).
    frame_differences: bool = True
    temporal_channels: int = 64
    temporal_layers: int = 2  # 1-D convolutions over time (kernel 3)
    dropout: float = 0.1
    accept_threshold: float = 0.5  # probability at which a video counts as "accepted"

    def __post_init__(self) -> None:
        if not 16 <= self.image_size_px <= 256:
            raise ValueError(f"image_size_px must be in [16, 256], got {self.image_size_px!r}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames!r}")
        if not self.conv_channels or any(c < 1 for c in self.conv_channels):
            raise ValueError(f"conv_channels must be positive, got {self.conv_channels!r}")
        if self.image_size_px % (2 ** len(self.conv_channels)) != 0:
            raise ValueError(
                f"image_size_px {self.image_size_px} must be divisible by 2**"
                f"len(conv_channels) = {2 ** len(self.conv_channels)}"
            )
        if self.temporal_channels < 1 or self.temporal_layers < 0:
            raise ValueError(
                f"temporal_channels must be >= 1 and temporal_layers >= 0, got "
                f"{self.temporal_channels!r}, {self.temporal_layers!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 < self.accept_threshold < 1.0:
            raise ValueError(f"accept_threshold must be in (0, 1), got {self.accept_threshold!r}")

    @property
    def in_channels(self) -> int:
        return 9 if self.frame_differences else 3
