"""The one refusal of pickled weight files, for every loader of the stack.

``torch.load`` / ``pickle`` run code stored in the file, so no loader of ours reads them: a
checkpoint must be safetensors. :func:`refuse_pickles` looks at a file, or at everything
under a folder (subfolders too), and raises a ValueError naming each pickled file it finds
(by the suffixes torch, transformers, diffusers, Lightning and pickle write, in any case).

:func:`save_model_folder` and :func:`read_model_folder` are the one format of our own small
models (the IDM, the execution critic): ``config.json`` (the config dataclass) beside
``model.safetensors``, written whole or not at all, read with pickles refused.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from executor_core.atomic_io import atomic_path
from executor_core.config_cli import config_from_dict, save_config_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
DEFAULT_HINT = "convert them with safetensors first"


def is_pickle(path: Path) -> bool:
    """Whether ``path``'s name ends in a pickled-weights suffix (case-insensitive)."""
    return path.suffix.lower() in PICKLE_SUFFIXES


def pickled_files(path: str | Path) -> list[str]:
    """The pickled files at ``path``, sorted: for a folder every one under it, relative to
    it (``transformer/extra.bin``); for anything else its own name if it is one (existing
    or not: a weights path is judged by its name before it is opened)."""
    path = Path(path)
    if path.is_dir():
        found = (p for p in path.rglob("*") if is_pickle(p) and p.is_file())
        return sorted(str(p.relative_to(path)) for p in found)
    return [path.name] if is_pickle(path) else []


def refuse_pickles(path: str | Path, hint: str = DEFAULT_HINT) -> None:
    """A ValueError naming the pickled weight file(s) at ``path`` (a folder or a file), if
    any: ``found a.bin, b/c.pt in '<folder>': pickled weights are refused, only
    safetensors are loaded (<hint>)``."""
    path = Path(path)
    if found := pickled_files(path):
        where = path if path.is_dir() else path.parent
        raise ValueError(
            f"found {', '.join(found)} in {str(where)!r}: pickled weights are refused, only "
            f"safetensors are loaded ({hint})"
        )


def save_model_folder(directory: str | Path, config: Any, module: torch.nn.Module) -> None:
    """``config.json`` + ``model.safetensors`` filled in a temporary sibling folder, then
    swapped in, so a crash never leaves a half-written model."""
    with atomic_path(directory, directory=True) as tmp:
        save_config_json(config, tmp / CONFIG_NAME)
        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})


def read_model_folder[C](
    directory: str | Path, config_cls: type[C], what: str, **overrides: object
) -> tuple[C, dict[str, torch.Tensor]]:
    """(config with ``overrides``, state dict) of a folder :func:`save_model_folder` wrote;
    ``what`` names the model in the errors (a missing folder or file, pickles)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {str(directory)!r}")
    refuse_pickles(directory, hint=f"convert them to {WEIGHTS_NAME}")
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{str(weights)!r} not found")
    config = config_from_dict(config_cls, json.loads((directory / CONFIG_NAME).read_text()))
    if overrides:
        config = replace(config, **overrides)
    return config, load_file(str(weights))
