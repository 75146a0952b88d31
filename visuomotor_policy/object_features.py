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
(``executor-train-policy --use_image false``) and still see where its hand is. The
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

from visuomotor_policy.configuration_policy import SIM_IMAGE_KEY
from visuomotor_policy.pretrain_backbone import ARCH, load_network, make_network
from visuomotor_policy.prompt_features import (
    DEFAULT_COLOURS,
    FAMILIES,
    PROMPT_FEATURE_KEY,
    prompt_vector,
)

OBJECT_DIM = 6  # the moved cube's x, y, z and the target's x, y, z
GRIPPER_LABELS = ("gripper_x_m", "gripper_y_m", "gripper_z_m", "joint_5_rad")


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

    @property
    def dim(self) -> int:
        """Numbers appended to the prompt vector."""
        return OBJECT_DIM + (len(GRIPPER_LABELS) if self.with_gripper else 0)

    def __post_init__(self) -> None:
        self.colours = tuple(self.colours)
        self.network = make_network(len(self.label_names)).eval()
        self._stats: dict[str, torch.Tensor] = {}
        self._column = {name: i for i, name in enumerate(self.label_names)}

    @classmethod
    def from_backbone(cls, folder: str | Path, with_gripper: bool = False) -> ObjectPositionStep:
        network, config = load_network(folder)
        if config["arch"] != ARCH:
            raise ValueError(f"{folder}: a {config['arch']!r} network, not {ARCH!r}")
        step = cls(
            label_names=list(config["label_names"]),
            with_gripper=with_gripper,
            image_px=int(config["image_px"]),
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

    def positions(self, labels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """(B, D) estimates + the prompts -> (B, dim): the named objects' positions (and the
        gripper's)."""
        out = torch.zeros(len(prompts), self.dim)
        for row, prompt in enumerate(prompts):
            moved, target = named_objects(prompt, self.colours)
            for offset, name in ((0, moved), (3, target)):
                axes = "xyz" if name in self.colours else "xy" if name else ""
                for k, axis in enumerate(axes):
                    out[row, offset + k] = labels[row, self._column[f"{name}_{axis}_m"]]
        if self.with_gripper:
            columns = [self._column[n] for n in GRIPPER_LABELS]
            out[:, OBJECT_DIM:] = labels[:, columns]
        return out

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
        found = self.positions(self.estimate(images.cpu()), prompts).to(prompt_vec.device)
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
