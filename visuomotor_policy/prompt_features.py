"""The task prompt as a small vector feature, for LeRobot policies without a text input.

ACT and diffusion policy read images and states only; with several tasks per scene the
image alone does not say which cube goes where. :class:`PromptVectorStep` is a LeRobot
processor step (saved in ``policy_preprocessor.json`` by its class path, so a checkpoint
loads it back with ``make_pre_post_processors``) that turns the ``task`` string LeRobot
passes as complementary data into ``observation.environment_state``:

    [family one-hot (pick_place, push, stack)] + [moved cube colour one-hot]
    + [target one-hot (bowl, mat, each cube colour)]

parsed from the words: "bowl" -> pick_place, "stack" / "on top" / "tower" / a second
cube colour -> stack, "push" / "slide" / "shove" / "mat" -> push; the first cube colour
named is the cube to move, the second the stack's base. Unknown words leave zeros. It is a
fixed keyword encoder (no weights), so a prompt naming a combination never trained on
still maps to a vector whose parts were all seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from lerobot.configs import FeatureType, PipelineFeatureType, PolicyFeature
from lerobot.processor import ProcessorStep, TransitionKey

PROMPT_FEATURE_KEY = "observation.environment_state"
FAMILIES: tuple[str, ...] = ("pick_place", "push", "stack")
DEFAULT_COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")


def prompt_vector(prompt: str, colours: tuple[str, ...] = DEFAULT_COLOURS) -> np.ndarray:
    """The fixed-size float32 encoding of one prompt (see the module docstring)."""
    words = re.findall(r"[a-z]+", prompt.lower())
    named = [w for w in words if w in colours]
    text = " ".join(words)
    if len(set(named)) >= 2 or "stack" in words or "tower" in words or "on top" in text:
        family = "stack"
    elif "bowl" in words:
        family = "pick_place"
    elif {"push", "slide", "shove", "mat"} & set(words):
        family = "push"
    else:
        family = ""
    targets = ("bowl", "mat", *colours)
    vec = np.zeros(len(FAMILIES) + len(colours) + len(targets), dtype=np.float32)
    if family:
        vec[FAMILIES.index(family)] = 1.0
    if named:
        vec[len(FAMILIES) + colours.index(named[0])] = 1.0
    target = {"pick_place": "bowl", "push": "mat"}.get(family)
    if family == "stack" and len(named) >= 2:
        target = next((c for c in named[1:] if c != named[0]), None)
    if target is not None:
        vec[len(FAMILIES) + len(colours) + targets.index(target)] = 1.0
    return vec


def prompt_dim(colours: tuple[str, ...] = DEFAULT_COLOURS) -> int:
    return len(FAMILIES) + 2 * len(colours) + 2


@dataclass
class PromptVectorStep(ProcessorStep):
    """``task`` (a string or a batch of strings) -> ``observation.environment_state``."""

    colours: tuple[str, ...] = field(default_factory=lambda: DEFAULT_COLOURS)
    key: str = PROMPT_FEATURE_KEY

    def __post_init__(self) -> None:
        self.colours = tuple(self.colours)

    def __call__(self, transition: Any) -> Any:
        complementary = transition.get(TransitionKey.COMPLEMENTARY_DATA) or {}
        task = complementary.get("task")
        if task is None:
            raise ValueError(
                f"PromptVectorStep needs the task prompt as 'task' complementary data to "
                f"build {self.key!r}; none was given"
            )
        tasks = [task] if isinstance(task, str) else list(task)
        vec = torch.from_numpy(np.stack([prompt_vector(t, self.colours) for t in tasks]))
        observation = dict(transition.get(TransitionKey.OBSERVATION) or {})
        state = observation.get("observation.state")
        if isinstance(state, torch.Tensor):
            if state.ndim == 1:  # not batched yet
                vec = vec[0]
            vec = vec.to(state.device)
        observation[self.key] = vec
        new = dict(transition)
        new[TransitionKey.OBSERVATION] = observation
        return new

    def get_config(self) -> dict[str, Any]:
        return {"colours": list(self.colours), "key": self.key}

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        observation = dict(features.get(PipelineFeatureType.OBSERVATION, {}))
        observation[self.key] = PolicyFeature(FeatureType.ENV, (prompt_dim(self.colours),))
        return {**features, PipelineFeatureType.OBSERVATION: observation}
