"""Resumable training state without pickles: optimizer moments go to safetensors, the
scalars (step, param-group hyper-parameters) to JSON."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

STATE_TENSORS = "optimizer.safetensors"
STATE_JSON = "training_state.json"


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_training_state(
    directory: Path, optimizer: torch.optim.Optimizer, step: int, extra: dict[str, Any]
) -> None:
    """Write the optimizer moments and the step counter into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, float]] = {}
    for param_id, param_state in sd["state"].items():
        for name, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{param_id}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[name] = float(value)
    tmp = directory / f".{STATE_TENSORS}.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, directory / STATE_TENSORS)
    payload = {"step": step, "param_groups": sd["param_groups"], "scalars": scalars, **extra}
    _atomic_write_text(directory / STATE_JSON, json.dumps(payload, indent=2) + "\n")


def load_training_state(directory: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore optimizer moments; returns the JSON payload (with ``step``)."""
    payload = json.loads((directory / STATE_JSON).read_text())
    tensors = load_file(str(directory / STATE_TENSORS))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    for param_id, values in payload.get("scalars", {}).items():
        state.setdefault(int(param_id), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": payload["param_groups"]})
    return payload
