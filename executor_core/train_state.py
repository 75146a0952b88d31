"""Resumable training state: one checkpoint format for every trainer, without pickles.

::

    run_dir/checkpoints/step_000500/
        ...                     what the trainer's ``save_model`` writes (safetensors)
        optimizer.safetensors   the optimizer moments
        training_state.json     step, param-group hyper-parameters, scalar optimizer state,
                                and the trainer's extras (data split, elapsed time, ...)
        train_config.json       the resolved config of the run

A checkpoint is filled in a temporary folder and renamed in whole
(:func:`executor_core.atomic_io.atomic_path`), so every ``step_*`` folder is complete and a
rerun resumes from :func:`latest_checkpoint` with :func:`load_training_state`.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from executor_core.atomic_io import atomic_path, remove_leftovers, setting_differences
from executor_core.config_cli import config_to_dict

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
STATE_TENSORS = "optimizer.safetensors"
STATE_JSON = "training_state.json"
CONFIG_JSON = "train_config.json"
_PREFIX = "step_"
_RESERVED = frozenset({"step", "param_groups", "scalars"})


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    """``run_dir/checkpoints/step_{step:06d}``."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"{_PREFIX}{step:06d}"


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    save_model: Callable[[Path], None],
    optimizer: torch.optim.Optimizer,
    extra: dict[str, Any],
    resolved_config: Any,
    keep: int | None = None,
) -> Path:
    """Write ``checkpoints/step_{step:06d}/`` atomically; returns its path.

    ``save_model(folder)`` writes the model files into the (temporary) checkpoint folder.
    ``extra`` goes into ``training_state.json`` beside the step; ``resolved_config`` (a
    config dataclass or a dict) into ``train_config.json``. ``keep``: how many of the newest
    checkpoints to keep (None = all); older ones and leftovers of killed saves are deleted.
    """
    reserved = sorted(_RESERVED & set(extra))
    if reserved:
        raise ValueError(f"extra must not set {reserved!r}: the checkpoint writes them")
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be >= 1 or None, got {keep!r}")
    final = checkpoint_dir(run_dir, step)
    with atomic_path(final, directory=True) as tmp:
        save_model(tmp)
        (tmp / CONFIG_JSON).write_text(
            json.dumps(config_to_dict(resolved_config), indent=2, sort_keys=True) + "\n"
        )
        _save_optimizer(tmp, optimizer, {"step": step, **extra})
    _prune(final.parent, keep)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete ``step_*`` checkpoint of a run, or None."""
    done = [
        path
        for path in (Path(run_dir) / CHECKPOINTS_DIR).glob(f"{_PREFIX}*")
        if _step_of(path) is not None and (path / STATE_JSON).is_file()
    ]
    return max(done, key=_step_of, default=None)


# How long a run trains: set anew on a resume by design (2 steps, then a rerun to 4).
RUN_LENGTH_FIELDS = frozenset(
    {"max_steps", "steps", "num_steps", "stop_at_step", "max_minutes", "time_budget_min"}
)


def load_training_state(
    checkpoint: str | Path, optimizer: torch.optim.Optimizer, config: Any = None
) -> dict[str, Any]:
    """Restore the optimizer moments of ``checkpoint``; returns its ``training_state.json``
    (``step`` and the trainer's extras). With the resuming run's ``config``, every setting
    that differs from the checkpoint's ``train_config.json`` is logged as a warning, each
    with both values (:func:`config_changes`): a resume goes on, but never silently with
    other settings."""
    checkpoint = Path(checkpoint)
    if config is not None:
        changes = config_changes(checkpoint, config)
        if changes:
            logger.warning(
                "resuming %s with settings other than it was trained with: %s",
                checkpoint,
                "; ".join(changes),
            )
    payload = json.loads((checkpoint / STATE_JSON).read_text())
    state: dict[int, dict[str, Any]] = {}
    for key, value in load_file(str(checkpoint / STATE_TENSORS)).items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    for param_id, values in payload.get("scalars", {}).items():
        state.setdefault(int(param_id), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": payload["param_groups"]})
    return payload


def config_changes(checkpoint: str | Path, config: Any) -> list[str]:
    """``"field: checkpoint X, now Y"`` for each setting of ``config`` (dotted for nested
    configs) that differs from the checkpoint's ``train_config.json``, but for the run
    length (:data:`RUN_LENGTH_FIELDS`); empty for a checkpoint without one."""
    path = Path(checkpoint) / CONFIG_JSON
    if not path.is_file():
        return []
    saved = _flatten(json.loads(path.read_text()))
    now = _flatten(json.loads(json.dumps(config_to_dict(config))))  # compared as stored
    keys = [
        k for k in sorted(set(saved) | set(now)) if k.rsplit(".", 1)[-1] not in RUN_LENGTH_FIELDS
    ]
    return setting_differences(saved, now, "checkpoint", "now", keys)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _save_optimizer(folder: Path, optimizer: torch.optim.Optimizer, payload: dict) -> None:
    """Moments as safetensors, scalars and param groups in ``training_state.json``."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, float]] = {}
    for param_id, param_state in sd["state"].items():
        for name, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{param_id}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[name] = float(value)
    save_file(tensors, str(folder / STATE_TENSORS))
    payload = {**payload, "param_groups": sd["param_groups"], "scalars": scalars}
    (folder / STATE_JSON).write_text(json.dumps(payload, indent=2) + "\n")


def _step_of(path: Path) -> int | None:
    digits = path.name.removeprefix(_PREFIX)
    return int(digits) if digits.isdigit() else None


def _prune(checkpoints: Path, keep: int | None) -> None:
    """Delete checkpoints older than the ``keep`` newest, and leftovers of killed saves."""
    for leftover in remove_leftovers(checkpoints, f"{_PREFIX}*"):
        logger.info("removed %s, left by an interrupted save", leftover)
    if keep is None:
        return
    steps = sorted(
        (p for p in checkpoints.glob(f"{_PREFIX}*") if _step_of(p) is not None), key=_step_of
    )
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
