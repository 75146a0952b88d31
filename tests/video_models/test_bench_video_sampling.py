"""``benchmarks/bench_video_sampling.py``: the shapes it can time (issue 14 item 4)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.fixture
def bench(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("benchmarks/bench_video_sampling.py")


def test_patch_and_heads_reshape_the_preset(bench: ModuleType) -> None:
    assert bench.patch_size("4x8x8") == (4, 8, 8)
    cfg = bench.preset_with("sim", (4, 8, 8), 8)
    assert cfg.transformer.patch_size == (4, 8, 8)
    assert cfg.transformer.num_attention_heads == 8
    assert cfg.transformer.attention_head_dim == 40  # the preset's, so the width is 320
    assert bench.preset_with("sim", None, None) == bench.MODEL_PRESETS["sim"]


def test_bad_shapes_name_the_value(bench: ModuleType) -> None:
    for text in ("4x8", "0x8x8", "axbxc"):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
            bench.patch_size(text)
    with pytest.raises(ValueError, match=r"size_px 64 is not a multiple of patch_size \(2, 7, 7\)"):
        bench.preset_with("sim", (2, 7, 7), None)
