"""safe_loading.refuse_pickles: the one refusal of pickled weights, for folders and files."""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from executor_core.safe_loading import (
    PICKLE_SUFFIXES,
    pickled_files,
    read_model_folder,
    refuse_pickles,
    save_model_folder,
)

REFUSED = "pickled weights are refused, only safetensors are loaded"


def _touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_safetensors_folder_passes(tmp_path: Path) -> None:
    _touch(tmp_path / "model.safetensors")
    _touch(tmp_path / "config.json", b"{}")
    _touch(tmp_path / "transformer" / "diffusion_pytorch_model.safetensors")
    _touch(tmp_path / "tokenizer" / "vocab.txt")
    refuse_pickles(tmp_path)  # no error
    assert pickled_files(tmp_path) == []


@pytest.mark.parametrize("suffix", sorted(PICKLE_SUFFIXES))
def test_every_pickle_suffix_is_refused(tmp_path: Path, suffix: str) -> None:
    _touch(tmp_path / "model.safetensors")
    _touch(tmp_path / f"weights{suffix}", pickle.dumps({"w": 1}))
    where = re.escape(repr(str(tmp_path)))
    with pytest.raises(ValueError, match=rf"found weights\{suffix} in {where}: {REFUSED}"):
        refuse_pickles(tmp_path)


def test_every_pickle_under_the_folder_is_named_sorted_and_relative(tmp_path: Path) -> None:
    _touch(tmp_path / "vae" / "diffusion_pytorch_model.bin")
    _touch(tmp_path / "training_args.BIN")  # any case
    _touch(tmp_path / "deep" / "er" / "optimizer.pt")
    _touch(tmp_path / "model.safetensors")
    (tmp_path / "folder.ckpt").mkdir()  # a folder is no pickle; what is in it is looked at
    _touch(tmp_path / "folder.ckpt" / "last.ckpt")
    expected = [
        "deep/er/optimizer.pt",
        "folder.ckpt/last.ckpt",
        "training_args.BIN",
        "vae/diffusion_pytorch_model.bin",
    ]
    assert pickled_files(tmp_path) == expected
    with pytest.raises(ValueError, match=r"found deep/er/optimizer\.pt, folder\.ckpt/last\.ckpt, "):
        refuse_pickles(tmp_path)


def test_a_file_is_judged_by_its_own_name_existing_or_not(tmp_path: Path) -> None:
    refuse_pickles(_touch(tmp_path / "r18.safetensors"))  # no error
    where = re.escape(repr(str(tmp_path)))
    with pytest.raises(ValueError, match=rf"found r18\.pth in {where}: {REFUSED}"):
        refuse_pickles(_touch(tmp_path / "r18.pth"))
    with pytest.raises(ValueError, match=r"found missing\.pkl in "):
        refuse_pickles(tmp_path / "missing.pkl")  # refused before anyone opens it
    refuse_pickles(tmp_path / "nowhere")  # nothing there, nothing to refuse


def test_the_hint_ends_the_message(tmp_path: Path) -> None:
    _touch(tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"\(convert them to model\.safetensors\)$"):
        refuse_pickles(tmp_path, hint="convert them to model.safetensors")
    with pytest.raises(ValueError, match=r"\(convert them with safetensors first\)$"):
        refuse_pickles(str(tmp_path))  # a str works as well as a Path


@dataclass(frozen=True)
class _Config:
    width: int = 3
    scale: float = 1.0


def test_model_folder_round_trip_overrides_and_refusals(tmp_path: Path) -> None:
    module = torch.nn.Linear(3, 2)
    save_model_folder(tmp_path / "m", _Config(width=3), module)
    config, state = read_model_folder(tmp_path / "m", _Config, "tiny model", scale=2.0)
    assert config == _Config(width=3, scale=2.0)
    torch.testing.assert_close(state["weight"], module.weight.detach())
    with pytest.raises(FileNotFoundError, match=r"tiny model folder not found: .*nowhere"):
        read_model_folder(tmp_path / "nowhere", _Config, "tiny model")
    _touch(tmp_path / "m" / "old.pt", pickle.dumps({}))
    with pytest.raises(ValueError, match=re.escape(REFUSED)):
        read_model_folder(tmp_path / "m", _Config, "tiny model")
