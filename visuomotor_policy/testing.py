"""A tiny random LeRobot ACT policy, saved as LeRobot's trainer saves a checkpoint.

For tests and plumbing only: random weights, meaningless motion. The ResNet-18 backbone
is built with ``pretrained_backbone_weights=None`` (nothing is downloaded) and the
transformer is a few thousand parameters wide. Normalisation statistics put the actions
around ``action_mean_rad`` (default the SO-101 home pose) with ``action_std_rad`` spread,
so the random policy stays near home, inside the joint range and the safety checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lerobot.configs import FeatureType, PolicyFeature
from lerobot.policies.factory import get_policy_class, make_policy_config, make_pre_post_processors
from lerobot.utils.constants import ACTION

from executor_core.robot_description import RobotDescription, default_robot_path
from visuomotor_policy.configuration_policy import SIM_IMAGE_KEY, SO101_JOINTS, STATE_KEY


def save_tiny_random_act(
    path: str | Path,
    image_size_px: int = 32,
    chunk_size: int = 8,
    n_action_steps: int = 4,
    seed: int = 0,
    image_key: str = SIM_IMAGE_KEY,
    joint_names: tuple[str, ...] = SO101_JOINTS,
    action_mean_rad: np.ndarray | None = None,  # (J,), default the robot's home pose
    action_std_rad: float = 0.05,
    use_state: bool = True,  # False: image only, no observation.state input
) -> Path:
    """Write config.json, model.safetensors and the processors into ``path``; return it."""
    joints = len(joint_names)
    if action_mean_rad is None:
        action_mean_rad = RobotDescription.from_yaml(default_robot_path()).home_rad
    mean = torch.as_tensor(np.asarray(action_mean_rad, dtype=np.float32))
    if mean.shape != (joints,):
        raise ValueError(f"action_mean_rad must be ({joints},), got {tuple(mean.shape)}")
    inputs = {image_key: PolicyFeature(FeatureType.VISUAL, (3, image_size_px, image_size_px))}
    if use_state:
        inputs[STATE_KEY] = PolicyFeature(FeatureType.STATE, (joints,))
    config = make_policy_config(
        "act",
        input_features=inputs,
        output_features={ACTION: PolicyFeature(FeatureType.ACTION, (joints,))},
        device="cpu",
        push_to_hub=False,
        chunk_size=chunk_size,
        n_action_steps=n_action_steps,
        vision_backbone="resnet18",
        pretrained_backbone_weights=None,  # no download: random backbone
        dim_model=16,
        n_heads=2,
        dim_feedforward=32,
        n_encoder_layers=1,
        n_decoder_layers=1,
        use_vae=False,
    )
    torch.manual_seed(seed)
    policy = get_policy_class("act")(config)
    stats = {
        image_key: {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25)},
        STATE_KEY: {"mean": mean.clone(), "std": torch.ones(joints)},
        ACTION: {"mean": mean.clone(), "std": torch.full((joints,), float(action_std_rad))},
    }
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    folder = Path(path)
    policy.save_pretrained(folder)
    preprocessor.save_pretrained(folder)
    postprocessor.save_pretrained(folder)
    return folder
