"""``benchmarks/side_by_side_models.py``: several video models on the same benchmark items,
imagined over executed frames, with verdicts and the frames' high-frequency energy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest


@pytest.fixture
def bench(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("benchmarks/side_by_side_models.py")


def test_bad_config(bench: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such pipeline folder: a=/nonexistent"):
        bench.SideBySideConfig({"a": Path("/nonexistent")}, tmp_path / "o.png")
    with pytest.raises(ValueError, match=r"unknown task families \['Push'\]"):
        bench.SideBySideConfig({"a": tmp_path}, tmp_path / "o.png", families=("Push",))
    with pytest.raises(ValueError, match=r"strip_items must be in \[1, min\(items, 8\)\], got 5"):
        bench.SideBySideConfig({"a": tmp_path}, tmp_path / "o.png", items=4, strip_items=5)


def test_bad_input_exits_2(
    bench: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc = bench.main(["--models", "a", "--output", str(tmp_path / "o.png")])
    assert rc == 2
    assert "--models entry 'a' is not name=path" in capsys.readouterr().err


def test_two_committed_executors_side_by_side(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The committed Executors on the first push item of the validation range: one block per
    model in the PNG, one record each, and a summary that counts them."""
    out = tmp_path / "sbs.png"
    models = "distilled=checkpoints/executor_sim,anchor=checkpoints/executor_anchor_sim"
    args = ["--models", models, "--items", "1", "--strip_items", "1", "--families", "push"]
    rc = bench.main([*args, "--num_frames", "4", "--output", str(out), "--expert"])
    assert rc is None
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    records, summary = lines[:-1], lines[-1]["summary"]
    assert [r["model"] for r in records] == ["distilled", "anchor", "expert"]
    expert = records[-1]
    assert expert["executed_success"] is True
    assert summary["expert"]["done_drawn"] == 1
    assert summary["expert"]["done_frame_median"] == expert["done_frame"] > 2
    assert expert["goal_frame"] <= expert["done_frame"]
    assert {r["item"] for r in records} == {records[0]["item"]}
    assert all(r["prompt"].startswith("push ") for r in records)
    assert all(isinstance(r["executed_success"], bool) for r in records)
    assert summary["anchor"]["items"] == 1
    assert summary["distilled"]["high_freq_energy"] > 0
    image = cv2.imread(str(out))
    assert image is not None
    assert image.shape[1] == 4 * 2 * 64  # four frames of 64 px, drawn at 2x
    assert not list(tmp_path.glob("*.tmp*"))


def test_goal_frame_says_how_soon_the_task_is_drawn_done(bench: ModuleType) -> None:
    """The expert's clip brings the cube to the goal late; the same scene with the cube
    jumping there has it at once; a scene where nothing happens never does."""
    cfg = bench.SideBySideConfig(
        {"a": Path("checkpoints/executor_anchor_sim")},
        Path("o.png"),
        items=1,
        strip_items=1,
        families=("pick_place",),
    )
    item = bench.pick_items(cfg)[0]
    ((clip, _, row),) = bench.expert_rows([item], "sim")
    judge = bench.ExecutionAwareJudge()
    episode = bench.episode_for_item(item)
    assert row["executed_success"] is True
    expert = bench.goal_frames(judge, clip, episode)
    assert expert == {"goal_frame": row["goal_frame"], "done_frame": row["done_frame"]}
    assert 6 <= expert["goal_frame"] <= expert["done_frame"]
    jump = np.concatenate([clip[:1], np.repeat(clip[-1:], len(clip) - 1, axis=0)])
    assert bench.goal_frames(judge, jump, episode) == {"goal_frame": 2, "done_frame": 3}
    still = np.repeat(clip[:1], len(clip), axis=0)
    assert bench.goal_frames(judge, still, episode) == {"goal_frame": None, "done_frame": None}
    with pytest.raises(ValueError, match="named 'expert'"):
        bench.SideBySideConfig({"expert": Path(".")}, Path("o.png"), expert=True)
