"""The one checkpoint format of the trainers: save, find the newest, restore, prune."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from executor_core.train_state import (
    checkpoint_dir,
    latest_checkpoint,
    load_training_state,
    save_checkpoint,
)


@dataclass(frozen=True)
class _Config:
    lr: float = 0.1
    out: Path = Path("runs/x")


def _trained(steps: int) -> tuple[torch.nn.Linear, torch.optim.AdamW]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    for _ in range(steps):
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def _weights_of(model: torch.nn.Module) -> Callable[[Path], None]:
    def save_model(folder: Path) -> None:
        save_file(dict(model.state_dict()), folder / "model.safetensors")

    return save_model


def test_round_trip_restores_the_optimizer_and_extras(tmp_path: Path) -> None:
    model, opt = _trained(3)
    path = save_checkpoint(
        tmp_path, 3, _weights_of(model), opt, {"elapsed_s": 1.5, "split": [1, 2]}, _Config()
    )
    assert path == checkpoint_dir(tmp_path, 3) == tmp_path / "checkpoints" / "step_000003"
    assert sorted(p.name for p in path.iterdir()) == [
        "model.safetensors",
        "optimizer.safetensors",
        "train_config.json",
        "training_state.json",
    ]
    assert json.loads((path / "train_config.json").read_text()) == {"lr": 0.1, "out": "runs/x"}
    assert latest_checkpoint(tmp_path) == path

    fresh = torch.nn.Linear(3, 2)
    fresh.load_state_dict(load_file(path / "model.safetensors"))
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.5)
    state = load_training_state(path, fresh_opt)
    assert state["step"] == 3
    assert state["elapsed_s"] == 1.5
    assert state["split"] == [1, 2]
    assert fresh_opt.param_groups[0]["lr"] == 0.1
    for p, q in zip(model.parameters(), fresh.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(fresh_opt.state[q][key], opt.state[p][key])


def test_newest_by_step_number_and_pruning(tmp_path: Path) -> None:
    model, opt = _trained(1)
    for step in (9, 10, 1_000_000):  # names sort wrongly past 6 digits; steps do not
        save_checkpoint(tmp_path, step, _weights_of(model), opt, {}, {"a": 1}, keep=2)
    assert latest_checkpoint(tmp_path).name == "step_1000000"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_000010",
        "step_1000000",
    ]
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_a_failed_save_leaves_nothing_and_leftovers_are_cleared(tmp_path: Path) -> None:
    model, opt = _trained(1)

    def broken(folder: Path) -> None:
        (folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        save_checkpoint(tmp_path, 1, broken, opt, {}, {})
    assert list((tmp_path / "checkpoints").iterdir()) == []
    assert latest_checkpoint(tmp_path) is None
    leftover = tmp_path / "checkpoints" / ".step_000002.abcd.tmp"  # what a kill -9 leaves
    leftover.mkdir()
    save_checkpoint(tmp_path, 2, _weights_of(model), opt, {}, {})
    assert not leftover.exists()
    assert latest_checkpoint(tmp_path).name == "step_000002"


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    model, opt = _trained(1)
    with pytest.raises(ValueError, match="'step'"):
        save_checkpoint(tmp_path, 1, _weights_of(model), opt, {"step": 5}, {})
    with pytest.raises(ValueError, match="keep must be >= 1"):
        save_checkpoint(tmp_path, 1, _weights_of(model), opt, {}, {}, keep=0)


@dataclass(frozen=True)
class _Data:
    root: str = "data/a"


@dataclass(frozen=True)
class _RunConfig:
    lr: float = 0.1
    max_steps: int = 2
    data: _Data = _Data()


def test_a_resume_with_other_settings_is_logged_naming_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model, opt = _trained(2)
    path = save_checkpoint(tmp_path, 2, _weights_of(model), opt, {}, _RunConfig())
    with caplog.at_level("WARNING", logger="executor_core.train_state"):
        load_training_state(path, opt, _RunConfig(max_steps=4))  # a longer run: by design
    assert not caplog.records
    other = _RunConfig(lr=0.2, max_steps=4, data=_Data(root="data/b"))
    with caplog.at_level("WARNING", logger="executor_core.train_state"):
        load_training_state(path, opt, other)
    (record,) = caplog.records
    assert "data.root: checkpoint 'data/a', now 'data/b'" in record.getMessage()
    assert "lr: checkpoint 0.1, now 0.2" in record.getMessage()
    assert "max_steps" not in record.getMessage()
