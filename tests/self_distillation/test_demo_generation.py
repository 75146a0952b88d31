from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from self_distillation import demo_generation as dg
from self_distillation.task_items import load_items


def _cfg(items: Path, out: Path) -> dg.DemoGenConfig:
    return replace(dg.PRESETS["debug"], items=items, output_dir=out, judge_demos=False)


def test_item_seed_is_stable_and_distinct() -> None:
    assert dg.item_seed("sim000001-0", 0) == dg.item_seed("sim000001-0", 0)
    assert dg.item_seed("sim000001-0", 0) != dg.item_seed("sim000001-1", 0)


def test_resume_after_kill_is_idempotent(
    synthetic_items: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = load_items(synthetic_items)
    straight = _cfg(synthetic_items, tmp_path / "straight")
    assert dg.generate_clips(straight, items) == 4

    killed = _cfg(synthetic_items, tmp_path / "killed")
    real_save = dg.save_clip
    calls = {"n": 0}

    def save_then_die(path: Path, frames: np.ndarray) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            # Killed mid-write: the temporary file exists, the clip does not.
            (path.parent / f".{path.name}.partial.tmp").write_bytes(b"half a clip")
            raise KeyboardInterrupt
        real_save(path, frames)

    monkeypatch.setattr(dg, "save_clip", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        dg.generate_clips(killed, items)
    monkeypatch.setattr(dg, "save_clip", real_save)
    assert len(list((tmp_path / "killed" / "clips").glob("*.npy"))) == 1

    assert dg.generate_clips(killed, items) == 3  # only the missing ones
    assert dg.generate_clips(killed, items) == 0  # finished: a no-op
    for it in items:
        a = dg.load_clip(dg.clip_path(tmp_path / "straight", it.item_id))
        b = dg.load_clip(dg.clip_path(tmp_path / "killed", it.item_id))
        np.testing.assert_array_equal(a, b)  # same seed per item in any run or shard


def test_shards_split_the_items(synthetic_items: Path, tmp_path: Path) -> None:
    items = load_items(synthetic_items)
    cfg = _cfg(synthetic_items, tmp_path / "sharded")
    assert dg.generate_clips(cfg, items, process_index=0, num_processes=2) == 2
    assert dg.generate_clips(cfg, items, process_index=1, num_processes=2) == 2
    names = sorted(p.stem for p in (tmp_path / "sharded" / "clips").glob("*.npy"))
    assert names == sorted(it.item_id for it in items)
