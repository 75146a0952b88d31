"""Any LeRobot policy checkpoint as the goal runner's ``ChunkPolicy``.

:meth:`LeRobotChunkPolicy.from_pretrained` reads the ``pretrained_model/`` folder LeRobot's
trainer writes (``config.json``, ``model.safetensors``, ``policy_preprocessor.json`` /
``policy_postprocessor.json`` and their state files) with LeRobot's own loaders:
``PreTrainedConfig.from_pretrained``, the policy class ``get_policy_class(type)`` names and
its ``from_pretrained``, and ``make_pre_post_processors`` from the same folder. Only local
folders are read (no hub) and pickled files are refused, naming them.

:meth:`LeRobotChunkPolicy.next_chunk` runs the policy as LeRobot's own inference loop does
(``prepare_observation_for_inference`` -> preprocessor -> ``select_action`` ->
postprocessor), ``n_action_steps`` times on the latest observation: an action-chunking
policy (ACT, diffusion, ...) predicts its chunk on the first call and hands out the queued
actions on the next ones, so a chunk of the policy's own ``n_action_steps`` is one
inference from the observation the runner just made. A chunk length other than the
policy's (``PolicyIOConfig.n_action_steps``) is written into the policy's own queue length,
so each chunk is still one inference; ``temporal_ensemble_coeff`` rebuilds an ACT policy with
temporal ensembling (chunks of one action). The prompt goes in as ``task``. A policy with
no state input (``executor-train-policy --use_state false``) gets the camera frame only.
A checkpoint that declares grasp-space actions (``executor-train-policy --action_space
grasp``; :mod:`visuomotor_policy.grasp_space`) has its chunk solved into joint targets,
seeded with the observation's joints.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from lerobot.configs import FeatureType, PipelineFeatureType, PreTrainedConfig
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.policies.utils import prepare_observation_for_inference
from lerobot.processor import PolicyProcessorPipeline
from lerobot.utils.constants import ACTION, OBS_STATE

from executor_core.frames import center_crop_resize
from executor_core.safe_loading import refuse_pickles
from executor_core.types import ActionChunk, Observation
from visuomotor_policy.configuration_policy import STATE_KEY, PolicyIOConfig
from visuomotor_policy.grasp_space import JOINTS as GRASP_JOINTS
from visuomotor_policy.grasp_space import GraspSpace, read_action_space

logger = logging.getLogger(__name__)

REQUIRED_FILES = ("config.json", "model.safetensors")


def check_policy_dir(path: str | Path) -> Path:
    """A local LeRobot checkpoint folder with safetensors only, or an error naming the file."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"policy checkpoint folder not found: {str(folder)!r} (only local folders are "
            "read, no hub; LeRobot's trainer writes checkpoints/<step>/pretrained_model)"
        )
    refuse_pickles(folder)
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{name} not found in policy checkpoint {str(folder)!r}")
    return folder


class LeRobotChunkPolicy:
    """A LeRobot policy, its processors and the feature mapping: a ``ChunkPolicy``."""

    def __init__(
        self,
        policy: PreTrainedPolicy,
        preprocessor: PolicyProcessorPipeline,
        postprocessor: PolicyProcessorPipeline,
        config: PolicyIOConfig,
        device: str = "cpu",
        grasp_space: GraspSpace | None = None,
        relative_actions: bool = False,
    ) -> None:
        self.policy, self.preprocessor, self.postprocessor = policy, preprocessor, postprocessor
        self.grasp_space = grasp_space  # None: the policy predicts joint targets
        # grasp_relative: x, y, z from the grasp point of the joints the chunk starts at
        self.relative_actions = relative_actions
        if relative_actions and (grasp_space is None or config.ensembles):
            raise ValueError(
                "a grasp_relative policy needs its grasp space and no temporal ensembling "
                "(each chunk is relative to its own observation's joints; averaging chunks "
                f"predicted from different joints mixes origins); ensembles={config.ensembles!r}"
            )
        self.device = torch.device(device)
        made = made_by_preprocessor(preprocessor)
        read = images_read_by_preprocessor(preprocessor)
        self.io, self.image_size_px, self.n_action_steps = _resolve_io(
            policy.config, config, made, read
        )
        set_action_steps(policy, self.n_action_steps)
        if grasp_space is not None and tuple(self.io.joint_names) != GRASP_JOINTS:
            raise ValueError(
                f"a grasp-space policy drives the joints {list(GRASP_JOINTS)} in that order; "
                f"joint_names is {list(self.io.joint_names)}"
            )
        self.reads_state = bool(self.io.state_key)
        # a preprocessor step may read the joints the policy itself does not (the
        # object-centric policy's offsets from the measured grasp point)
        self.feeds_state = self.reads_state or any(
            getattr(step, "needs_state", False) for step in preprocessor.steps
        )
        # LeRobot's ACT without its VAE takes its device from batch["observation.state"]
        # even when it reads no state (modeling_act.py, ACT.forward): give it an empty one
        self._empty_state = policy.config.type == "act" and not self.reads_state

    @classmethod
    def from_pretrained(
        cls, path: str | Path, config: PolicyIOConfig | None = None, device: str = "cpu"
    ) -> LeRobotChunkPolicy:
        folder = check_policy_dir(path)
        policy_config = PreTrainedConfig.from_pretrained(folder, local_files_only=True)
        policy_config.device = device
        policy_config.pretrained_path = folder
        config = config or PolicyIOConfig()
        if config.ensembles:
            enable_temporal_ensembling(policy_config, config.temporal_ensemble_coeff)
        policy_cls = get_policy_class(policy_config.type)
        policy = policy_cls.from_pretrained(folder, config=policy_config, local_files_only=True)
        pre, post = make_pre_post_processors(
            policy_config,
            pretrained_path=str(folder),
            preprocessor_overrides={"device_processor": {"device": device}},
        )
        space = read_action_space(folder)
        grasp = GraspSpace() if space != "joints" else None
        chunk_policy = cls(policy, pre, post, config, device, grasp, space == "grasp_relative")
        logger.info(
            "loaded %s policy from %s: %s %dpx + %s -> %d actions per chunk at %g Hz",
            policy_config.type,
            folder,
            chunk_policy.io.image_key,
            chunk_policy.image_size_px,
            chunk_policy.io.state_key or "no state",
            chunk_policy.n_action_steps,
            chunk_policy.io.fps_hz,
        )
        return chunk_policy

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.io.joint_names

    def reset(self) -> None:
        self.policy.reset()
        self.preprocessor.reset()
        self.postprocessor.reset()

    @torch.inference_mode()
    def next_chunk(self, observation: Observation, prompt: str) -> ActionChunk:
        frame = self.features(observation)
        rows = []
        for _ in range(self.n_action_steps):
            batch = prepare_observation_for_inference(
                dict(frame), self.device, prompt, self.io.robot_type
            )
            batch = self.preprocessor(batch)
            if self._empty_state:
                batch[OBS_STATE] = torch.zeros((1, 0), device=self.device)
            action = self.postprocessor(self.policy.select_action(batch))
            rows.append(action.reshape(-1).float().cpu().numpy())
        actions = np.stack(rows).astype(np.float32)  # (H, J)
        if not np.all(np.isfinite(actions)):
            raise ValueError(f"the policy returned non-finite actions: {actions.tolist()!r}")
        if self.grasp_space is not None:
            seed = _state_in_order(observation, self.io.joint_names)
            if self.relative_actions:
                actions = self.grasp_space.absolute_from(actions, seed)
            actions = self.grasp_space.to_joints(actions, seed, strict=False)
        return ActionChunk(actions, self.io.fps_hz, self.io.joint_names)

    def features(self, observation: Observation) -> dict[str, np.ndarray]:
        """The observation as the policy's raw features: image (S, S, 3) uint8, state (J,)."""
        frame = {self.io.image_key: center_crop_resize(observation.image_rgb, self.image_size_px)}
        if self.feeds_state:
            key = self.io.state_key or STATE_KEY
            frame[key] = _state_in_order(observation, self.io.joint_names)
        return frame


def enable_temporal_ensembling(policy_config: PreTrainedConfig, coeff: float) -> None:
    """ACT's temporal ensembling, set before the policy is built (it makes its ensembler
    then): one action per inference, every inference's chunk averaged into the next ones."""
    if not hasattr(policy_config, "temporal_ensemble_coeff"):
        raise ValueError(
            f"temporal_ensemble_coeff {coeff!r}: a {policy_config.type!r} policy has no "
            "temporal ensembling (ACT has)"
        )
    policy_config.temporal_ensemble_coeff = float(coeff)
    policy_config.n_action_steps = 1


def set_action_steps(policy: PreTrainedPolicy, steps: int) -> None:
    """Make the policy's own action queue ``steps`` long, so one chunk is one inference.

    LeRobot's ``select_action`` refills its queue with ``config.n_action_steps`` actions of a
    new inference only when the queue is empty. A chunk of another length would replay the
    queued actions of an older observation (or take two inferences of the same one)."""
    config = policy.config
    own = getattr(config, "n_action_steps", None)
    if own is None or own == steps:
        return
    check_action_steps(config, steps)
    config.n_action_steps = steps
    policy.reset()


def check_action_steps(config: PreTrainedConfig, steps: int) -> None:
    """``steps`` actions per inference fit the policy, or an error naming both lengths."""
    longest = longest_action_steps(config)
    if longest is not None and steps > longest:
        raise ValueError(
            f"n_action_steps {steps!r} is longer than the {config.type!r} policy predicts "
            f"({longest} actions per inference)"
        )
    if getattr(config, "temporal_ensemble_coeff", None) is not None and steps != 1:
        raise ValueError(
            f"n_action_steps {steps!r}: the policy ensembles temporally, one action per chunk"
        )


def longest_action_steps(config: PreTrainedConfig) -> int | None:
    """Actions one inference predicts from the current step: ACT's ``chunk_size``, diffusion's
    ``horizon - n_obs_steps + 1``; None when the policy type says neither."""
    if (chunk := getattr(config, "chunk_size", None)) is not None:
        return int(chunk)
    if (horizon := getattr(config, "horizon", None)) is not None:
        return int(horizon) - int(getattr(config, "n_obs_steps", 1)) + 1
    return None


def _state_in_order(observation: Observation, joint_names: tuple[str, ...]) -> np.ndarray:
    q = observation.joint_positions_rad
    if q is None:
        raise ValueError("the policy reads the joint state, but the observation has none")
    names = observation.joint_names or joint_names
    missing = [n for n in joint_names if n not in names]
    if missing or len(names) != len(q):
        raise ValueError(
            f"the policy's joints {list(joint_names)} are not all in the observation's "
            f"{list(names)} (missing {missing})"
        )
    return np.asarray([q[names.index(n)] for n in joint_names], dtype=np.float32)


def made_by_preprocessor(preprocessor: PolicyProcessorPipeline) -> set[str]:
    """The observation features the checkpoint's own preprocessor makes (e.g. a prompt
    vector from the ``task``): the policy reads them, but no camera or joint feeds them."""
    empty = {PipelineFeatureType.OBSERVATION: {}, PipelineFeatureType.ACTION: {}}
    return set(preprocessor.transform_features(empty)[PipelineFeatureType.OBSERVATION])


def images_read_by_preprocessor(preprocessor: PolicyProcessorPipeline) -> dict[str, int]:
    """Camera images a preprocessor step reads itself (e.g. an object-position estimate),
    with the side in pixels it expects: a policy may then read no image of its own."""
    return {
        step.image_key: int(step.image_px)
        for step in preprocessor.steps
        if hasattr(step, "image_key") and hasattr(step, "image_px")
    }


def _resolve_io(
    policy_config: PreTrainedConfig,
    io: PolicyIOConfig,
    made: set[str] = frozenset(),
    read: dict[str, int] | None = None,
) -> tuple[PolicyIOConfig, int, int]:
    """Check the mapping against the policy's features: (io, image side px, actions/chunk).
    ``made``: inputs the preprocessor makes itself; ``read``: images it reads itself."""
    read = read or {}
    inputs = {k: f for k, f in (policy_config.input_features or {}).items() if k not in made}
    visual = sorted(k for k, f in inputs.items() if f.type is FeatureType.VISUAL)
    if io.image_key not in visual and io.image_key not in read:
        raise ValueError(
            f"image_key {io.image_key!r} is not a visual input of the policy; it has {visual}"
        )
    if unfed := [k for k in visual if k != io.image_key]:
        raise ValueError(f"the policy also reads the cameras {unfed}; only {io.image_key!r} is fed")
    if io.image_key in visual:
        _, height, width = inputs[io.image_key].shape
    else:  # only the preprocessor reads the camera
        height = width = read[io.image_key]
    if height != width:
        raise ValueError(
            f"policy image {io.image_key!r} is {height}x{width}; only square frames are fed"
        )
    states = sorted(k for k, f in inputs.items() if f.type is FeatureType.STATE)
    if io.state_key and not states:
        logger.info("the policy reads no state: the joint state (%s) is not fed", io.state_key)
        io = replace(io, state_key="")
    if io.state_key and io.state_key not in states:
        raise ValueError(
            f"state_key {io.state_key!r} is not a state input of the policy; it has {states}"
        )
    if not io.state_key and states:
        raise ValueError(f"the policy reads the state {states}, but state_key is empty")
    joints = len(io.joint_names)
    if io.state_key and tuple(inputs[io.state_key].shape) != (joints,):
        raise ValueError(
            f"policy state {io.state_key!r} has shape {tuple(inputs[io.state_key].shape)}, "
            f"joint_names {list(io.joint_names)} has {joints}"
        )
    action = (policy_config.output_features or {}).get(ACTION)
    if action is None or tuple(action.shape) != (joints,):
        shape = None if action is None else tuple(action.shape)
        raise ValueError(f"policy action has shape {shape}, joint_names has {joints} joints")
    if unknown := sorted(set(inputs) - set(visual) - set(states)):
        raise ValueError(f"the policy reads inputs {unknown} that no observation provides")
    steps = io.n_action_steps or int(getattr(policy_config, "n_action_steps", 1) or 1)
    return io, io.image_size_px or int(height), steps
