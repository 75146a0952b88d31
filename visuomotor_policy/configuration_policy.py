"""How our observation maps onto a LeRobot policy's features, and its chunks back.

The goal runner's observation is one camera frame and the joint state in the robot's
order (radians); a LeRobot policy reads a dict of features. :class:`PolicyIOConfig` says
which feature gets which: the camera frame goes to ``image_key`` (centre-cropped and
resized with ``executor_core.frames.center_crop_resize`` to ``image_size_px``, by default
the policy's own feature size), the joint state to ``state_key`` in ``joint_names`` order,
the prompt to the ``task`` complementary data. The policy's actions are absolute joint
targets in rad in ``joint_names`` order (the stack's datasets: ``executor_sim.generate``);
``n_action_steps`` of them make one chunk at ``fps_hz``: one inference, the first
``n_action_steps`` actions of the policy's predicted chunk (an override is written into the
policy's own ``n_action_steps``, so no queued action of an older observation is replayed).
``temporal_ensemble_coeff`` turns on ACT's temporal ensembling (one action per chunk, every
step an inference, the overlapping predictions averaged with weights exp(-coeff * age)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The features executor_sim.generate writes (its IMAGE_KEY, observation.state, action).
SIM_IMAGE_KEY = "observation.images.scene"
STATE_KEY = "observation.state"
SO101_JOINTS = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)


@dataclass(frozen=True)
class PolicyIOConfig:
    image_key: str = SIM_IMAGE_KEY  # the policy's visual input feature that gets the camera
    state_key: str = STATE_KEY  # its state feature ("": the policy reads no state)
    image_size_px: int = 0  # square side the frame is cropped/resized to (0: the policy's)
    joint_names: tuple[str, ...] = SO101_JOINTS  # order of the state and action vectors
    n_action_steps: int = 0  # actions per chunk (0: the policy's own n_action_steps, else 1)
    fps_hz: float = 10.0  # the policy's control rate (its dataset's fps): the chunk's rate
    robot_type: str = ""  # complementary data some policies read; "" for most
    # ACT's temporal ensembling (the ACT paper's 0.01; needs n_action_steps 0 or 1); < 0: off
    temporal_ensemble_coeff: float = -1.0

    def __post_init__(self) -> None:
        if not self.image_key.startswith("observation.image"):
            raise ValueError(
                f"image_key must name an observation.image* feature, got {self.image_key!r}"
            )
        if self.state_key and not self.state_key.startswith("observation."):
            raise ValueError(
                f"state_key must name an observation.* feature, got {self.state_key!r}"
            )
        if self.image_size_px < 0 or 0 < self.image_size_px < 8:
            raise ValueError(f"image_size_px must be 0 or >= 8, got {self.image_size_px!r}")
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(
                f"joint_names must be distinct and non-empty, got {self.joint_names!r}"
            )
        if self.n_action_steps < 0:
            raise ValueError(
                f"n_action_steps must be >= 0 (0: the policy's), got {self.n_action_steps!r}"
            )
        if not 0 < self.fps_hz <= 1000:
            raise ValueError(f"fps_hz must be in (0, 1000], got {self.fps_hz!r}")
        if not math.isfinite(self.temporal_ensemble_coeff):
            raise ValueError(
                f"temporal_ensemble_coeff must be finite, got {self.temporal_ensemble_coeff!r}"
            )
        if self.ensembles and self.n_action_steps > 1:
            raise ValueError(
                "temporal ensembling executes one action per inference: n_action_steps must "
                f"be 0 or 1 with temporal_ensemble_coeff {self.temporal_ensemble_coeff!r}, got "
                f"{self.n_action_steps!r}"
            )

    @property
    def ensembles(self) -> bool:
        return self.temporal_ensemble_coeff >= 0


PRESETS = {
    "default": PolicyIOConfig(),
    "debug": PolicyIOConfig(image_size_px=32, n_action_steps=4),
}
