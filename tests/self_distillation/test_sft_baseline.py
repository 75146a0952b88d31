"""The SFT baseline's expert clips: one from the initial state, or windows along the motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from self_distillation.closed_loop import make_env
from self_distillation.sft_baseline import expert_clip, expert_clips, window_starts
from self_distillation.task_items import load_items


def test_window_starts_spread_over_the_motion() -> None:
    assert window_starts(47, 1) == [0]
    assert window_starts(47, 4) == [0, 11, 23, 35]
    assert window_starts(2, 4) == [0, 1]  # a short motion gives fewer distinct windows
    with pytest.raises(ValueError, match=r"windows >= 1.*0, 47"):
        window_starts(47, 0)


def test_windows_start_part_way_through_the_experts_motion(debug_items: Path) -> None:
    item = next(it for it in load_items(debug_items) if it.seed is not None)
    env = make_env(32)
    try:
        (single,), (single_real,), ok_single = expert_clip(env, item, num_frames=4, frame_stride=4)
        windows, real, ok_windows = expert_clip(env, item, num_frames=4, frame_stride=4, windows=3)
    finally:
        env.close()
    # windows run the expert to its end (13 steps are too few to finish the task)
    assert ok_windows
    assert not ok_single
    assert single.shape == (4, 32, 32, 3)
    assert len(windows) == 3
    # the first window is the initial-state clip; the others start where the arm has moved
    np.testing.assert_array_equal(windows[0], single)
    for later in windows[1:]:
        assert later.shape == single.shape
        assert np.abs(later[0].astype(int) - single[0].astype(int)).mean() > 1.0
    assert np.abs(windows[2][0].astype(int) - windows[1][0].astype(int)).mean() > 1.0
    # these windows are all within the expert's motion: every frame shows it moving
    assert single_real == 4
    assert real == [4, 4, 4]


def test_frames_after_the_expert_is_done_are_marked_still(debug_items: Path) -> None:
    item = next(it for it in load_items(debug_items) if it.seed is not None)
    env = make_env(32)
    try:  # a clip of 61 steps, as the sim preset's: the last window outlasts the expert
        windows, real, ok = expert_clip(env, item, num_frames=4, frame_stride=20, windows=3)
    finally:
        env.close()
    assert ok
    assert len(real) == 3
    assert real[-1] < 4
    assert real == sorted(real, reverse=True)  # later windows have less motion left
    for clip, n_motion in zip(windows, real, strict=True):
        for still in clip[n_motion:]:  # after the expert is done the world holds still
            assert np.abs(still.astype(int) - windows[-1][-1].astype(int)).mean() < 0.5
    # the initial-state clip alone marks its still frames the same way
    env = make_env(32)
    try:
        (single,), (n_single,), _ = expert_clip(env, item, num_frames=4, frame_stride=20)
    finally:
        env.close()
    np.testing.assert_array_equal(single, windows[0])
    assert n_single == real[0]


def test_expert_clips_keep_an_items_windows_together(debug_items: Path) -> None:
    items = [it for it in load_items(debug_items) if it.seed is not None][:2]
    clips, real, kept = expert_clips(
        items, num_frames=4, frame_stride=4, image_size_px=32, windows=2
    )
    assert len(clips) == len(kept) == len(real)
    assert all(1 <= r <= 4 for r in real)
    for item in {it.item_id for it in kept}:
        assert sum(it.item_id == item for it in kept) == 2
    with pytest.raises(ValueError, match=r"windows >= 1.*0"):
        expert_clips(items, num_frames=4, frame_stride=4, image_size_px=32, windows=0)
