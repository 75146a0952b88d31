"""Where the prompt's objects are, seen by the pretrained network: an object-centric input.

A policy trained on 10 demos per family does not learn which cube the prompt names: on
new layouts its first chunk aims nearer another cube than the named one in about 60 % of
the scenes (chance), while on its own demo scenes it aims within 1 cm
(``checkpoints/policy_sim/README.md``). :class:`ObjectPositionStep` hands it the binding:
the network ``executor-pretrain-backbone`` trained in simulation looks at the camera frame
and estimates every cube's, the bowl's and the mat's position; the step keeps the ones the
prompt names and appends them to ``observation.environment_state``:

    [the prompt vector] + [the moved cube's x, y, z] + [the target's x, y, z]

(the target is the bowl, the mat or the stack's base cube; z is 0 for the bowl and the
mat; an object the prompt does not name gives zeros), and with ``with_gripper`` the
gripper's estimated x, y, z and jaw angle: then a policy can read no image at all
(``executor-train-policy --use_image false``) and still see where its hand is.

``frame="gripper"`` (``--object_frame gripper``) gives the same estimates in the hand's
frame instead, so that no number says where on the table the scene is:

    [the prompt vector] + [moved cube - gripper] + [target - gripper] + [gripper z, jaw]

A world-frame policy trained on 30 demos learns the approach and the grasp at 30 places;
in the hand's frame every demo teaches the same "the cube is 2 cm ahead and 8 cm down".
``frame="grasp_point"`` measures the same offsets from the grasp point of the measured
joints (``observation.state``, by forward kinematics) and appends that point's height and
the measured jaw: the origin of a ``grasp_relative`` action, so the offsets the policy
reads and writes share it and only the objects' estimates carry the image's error.
The
estimate comes from the pixels at run time as in training: nothing reads the simulator's
state. It is a LeRobot processor step with its weights (float16) in the checkpoint's
preprocessor state, so ``make_pre_post_processors`` loads it back from the checkpoint
folder alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lerobot.configs import FeatureType, PipelineFeatureType, PolicyFeature
from lerobot.processor import ProcessorStep, TransitionKey

from visuomotor_policy.configuration_policy import SIM_IMAGE_KEY, STATE_KEY
from visuomotor_policy.grasp_space import GraspSpace
from visuomotor_policy.pretrain_backbone import ARCH, load_network, make_network
from visuomotor_policy.prompt_features import (
    DEFAULT_COLOURS,
    FAMILIES,
    PROMPT_FEATURE_KEY,
    prompt_vector,
)

OBJECT_DIM = 6  # the moved cube's x, y, z and the target's x, y, z
GRIPPER_LABELS = ("gripper_x_m", "gripper_y_m", "gripper_z_m", "joint_5_rad")
FRAMES = ("world", "gripper", "grasp_point")


def named_objects(prompt: str, colours: tuple[str, ...] = DEFAULT_COLOURS) -> tuple[str, str]:
    """(moved cube colour, target) the prompt names, as ``prompt_vector`` parses it; "" for
    one it does not name. The target is "bowl", "mat" or a cube colour."""
    vec = prompt_vector(prompt, colours)
    n_fam, n_col = len(FAMILIES), len(colours)
    moved = vec[n_fam : n_fam + n_col]
    targets = ("bowl", "mat", *colours)
    target = vec[n_fam + n_col :]
    return (
        colours[int(moved.argmax())] if moved.any() else "",
        targets[int(target.argmax())] if target.any() else "",
    )


def to_gripper_frame(world: torch.Tensor, named: torch.Tensor) -> torch.Tensor:
    """(B, 10) [moved xyz, target xyz, gripper xyz, jaw] -> (B, 8) [moved - gripper,
    target - gripper, gripper z, jaw]. An object the prompt does not name (``named``, (B, 6),
    False over its three numbers) stays zeros."""
    gripper = world[:, OBJECT_DIM : OBJECT_DIM + 3]
    offsets = []
    for start in (0, 3):
        present = named[:, start : start + 3].any(dim=1, keepdim=True)
        offsets.append(torch.where(present, world[:, start : start + 3] - gripper, 0.0))
    return torch.cat([*offsets, world[:, OBJECT_DIM + 2 :]], dim=1)


@dataclass
class ObjectPositionStep(ProcessorStep):
    """Image + ``task`` -> the named objects' estimated positions, appended to
    ``observation.environment_state`` (after :class:`PromptVectorStep`)."""

    label_names: list[str] = field(default_factory=list)
    image_key: str = SIM_IMAGE_KEY
    key: str = PROMPT_FEATURE_KEY
    colours: tuple[str, ...] = field(default_factory=lambda: DEFAULT_COLOURS)
    with_gripper: bool = False  # also the gripper's estimated position and jaw angle
    image_px: int = 64  # the frames the network was trained on
    # "world": positions as estimated; "gripper": the objects' offsets from the gripper,
    # then the gripper's height and jaw angle (needs with_gripper); "grasp_point": offsets
    # from the measured joints' grasp point (reads state_key), its height, the measured jaw
    frame: str = "world"
    state_key: str = STATE_KEY

    @property
    def needs_state(self) -> bool:
        """Whether the step reads the joint state (the policy itself may not)."""
        return self.frame == "grasp_point"

    @property
    def dim(self) -> int:
        """Numbers appended to the prompt vector."""
        if self.frame != "world":
            return OBJECT_DIM + 2
        return OBJECT_DIM + (len(GRIPPER_LABELS) if self.with_gripper else 0)

    def __post_init__(self) -> None:
        if self.frame not in FRAMES:
            raise ValueError(f"frame must be one of {FRAMES}, got {self.frame!r}")
        if self.frame == "gripper" and not self.with_gripper:
            raise ValueError("frame 'gripper' needs with_gripper (the gripper's estimate)")
        self.colours = tuple(self.colours)
        self._grasp = GraspSpace() if self.needs_state else None
        self.network = make_network(len(self.label_names)).eval()
        self._stats: dict[str, torch.Tensor] = {}
        self._column = {name: i for i, name in enumerate(self.label_names)}

    @classmethod
    def from_backbone(
        cls, folder: str | Path, with_gripper: bool = False, frame: str = "world"
    ) -> ObjectPositionStep:
        network, config = load_network(folder)
        if config["arch"] != ARCH:
            raise ValueError(f"{folder}: a {config['arch']!r} network, not {ARCH!r}")
        step = cls(
            label_names=list(config["label_names"]),
            with_gripper=with_gripper,
            image_px=int(config["image_px"]),
            frame=frame,
        )
        step.network = network
        step._stats = {
            k: torch.tensor(config[k], dtype=torch.float32)
            for k in ("image_mean", "image_std", "label_mean", "label_std")
        }
        return step

    @torch.no_grad()
    def estimate(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] -> (B, D) label estimates in metres and radians."""
        s = self._stats
        x = (images.float() - s["image_mean"].view(1, 3, 1, 1)) / s["image_std"].view(1, 3, 1, 1)
        return self.network(x) * s["label_std"] + s["label_mean"]

    def positions(
        self, labels: torch.Tensor, prompts: list[str], joints_rad: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, D) estimates + the prompts (+ the (B, 6) measured joints for "grasp_point")
        -> (B, dim): the named objects' positions (and the gripper's), in ``frame``."""
        out = torch.zeros(len(prompts), OBJECT_DIM + len(GRIPPER_LABELS))
        named = torch.zeros(len(prompts), OBJECT_DIM, dtype=torch.bool)
        for row, prompt in enumerate(prompts):
            moved, target = named_objects(prompt, self.colours)
            for offset, name in ((0, moved), (3, target)):
                named[row, offset : offset + 3] = bool(name)
                axes = "xyz" if name in self.colours else "xy" if name else ""
                for k, axis in enumerate(axes):
                    out[row, offset + k] = labels[row, self._column[f"{name}_{axis}_m"]]
        if self.with_gripper:
            columns = [self._column[n] for n in GRIPPER_LABELS]
            out[:, OBJECT_DIM:] = labels[:, columns]
        if self.frame == "gripper":
            return to_gripper_frame(out, named)
        if self.frame == "grasp_point":
            return self._from_grasp_point(out, named, joints_rad)
        return out[:, : self.dim]

    def _from_grasp_point(
        self, world: torch.Tensor, named: torch.Tensor, joints_rad: torch.Tensor | None
    ) -> torch.Tensor:
        if joints_rad is None or joints_rad.shape != (len(world), 6):
            shape = None if joints_rad is None else tuple(joints_rad.shape)
            raise ValueError(
                f"frame 'grasp_point' needs the measured joints {self.state_key!r} as "
                f"({len(world)}, 6); got {shape}"
            )
        assert self._grasp is not None
        q = joints_rad.detach().cpu().double().numpy()
        point = torch.from_numpy(self._grasp.points(q)).float()
        hand = torch.cat([point, joints_rad[:, 5:6].float().cpu()], dim=1)  # x, y, z, jaw
        return to_gripper_frame(torch.cat([world[:, :OBJECT_DIM], hand], dim=1), named)

    def __call__(self, transition: Any) -> Any:
        observation = dict(transition.get(TransitionKey.OBSERVATION) or {})
        complementary = transition.get(TransitionKey.COMPLEMENTARY_DATA) or {}
        task = complementary.get("task")
        image = observation.get(self.image_key)
        prompt_vec = observation.get(self.key)
        given = {"task": task, self.image_key: image, self.key: prompt_vec}
        if missing := [name for name, value in given.items() if value is None]:
            raise ValueError(
                f"ObjectPositionStep needs the 'task', {self.image_key!r} and {self.key!r} "
                f"(PromptVectorStep first); missing: {missing}"
            )
        batched = image.ndim == 4
        images = image if batched else image.unsqueeze(0)
        prompts = [task] if isinstance(task, str) else list(task)
        joints = observation.get(self.state_key) if self.needs_state else None
        if joints is not None and joints.ndim == 1:
            joints = joints.unsqueeze(0)
        found = self.positions(self.estimate(images.cpu()), prompts, joints)
        found = found.to(prompt_vec.device)
        found = found if batched else found[0]
        observation[self.key] = torch.cat([prompt_vec, found.to(prompt_vec.dtype)], dim=-1)
        new = dict(transition)
        new[TransitionKey.OBSERVATION] = observation
        return new

    def get_config(self) -> dict[str, Any]:
        return {
            "label_names": list(self.label_names),
            "image_key": self.image_key,
            "key": self.key,
            "colours": list(self.colours),
            "with_gripper": self.with_gripper,
            "image_px": self.image_px,
            "frame": self.frame,
            "state_key": self.state_key,
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        weights = {
            f"network.{k}": (v.half() if v.is_floating_point() else v).contiguous()
            for k, v in self.network.state_dict().items()
        }
        return weights | {f"stats.{k}": v.contiguous() for k, v in self._stats.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        weights = {
            k.removeprefix("network."): v.float() if v.is_floating_point() else v
            for k, v in state.items()
            if k.startswith("network.")
        }
        self.network.load_state_dict(weights)
        self.network.eval()
        self._stats = {
            k.removeprefix("stats."): v.float() for k, v in state.items() if k.startswith("stats.")
        }

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        observation = dict(features.get(PipelineFeatureType.OBSERVATION, {}))
        before = observation.get(self.key)
        dim = (before.shape[0] if before is not None else 0) + self.dim
        observation[self.key] = PolicyFeature(FeatureType.ENV, (dim,))
        return {**features, PipelineFeatureType.OBSERVATION: observation}
