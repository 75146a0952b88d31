"""executor-generate-demos resumed after a kill removes what the killed writes left (issue 15,
item 12): a half-written clip and a half-assembled dataset folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from self_distillation import demo_generation as dg


def test_rerun_removes_leftovers_of_killed_writes(synthetic_items: Path, tmp_path: Path) -> None:
    out = tmp_path / "demos"
    cfg = replace(dg.PRESETS["debug"], items=synthetic_items, output_dir=out, judge_demos=False)
    dg.run_generate(cfg)
    clips = sorted(p.name for p in (out / "clips").iterdir())
    # What kills during the clip writes and the dataset assembly leave (atomic_io names).
    (out / "clips" / f".{clips[0]}.x1y2.tmp").write_bytes(b"half a clip")
    (out / ".dataset.x1y2.tmp" / "meta").mkdir(parents=True)
    assert dg.run_generate(cfg) == out / "dataset"  # complete: nothing to redo
    assert sorted(p.name for p in (out / "clips").iterdir()) == clips
    assert sorted(p.name for p in out.iterdir()) == ["clips", "config.json", "dataset"]
