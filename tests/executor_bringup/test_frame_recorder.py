"""FrameRecorder: only while recording, at most at fps, bounded, playback fps from times;
GoalMedia's rates are checked."""

from __future__ import annotations

import numpy as np
import pytest

from executor_bringup.frame_recorder import FrameRecorder
from executor_bringup.goal_media import GoalMedia


def _frame(value: int) -> np.ndarray:
    return np.full((4, 6, 3), value, dtype=np.uint8)


def test_records_only_between_start_and_stop() -> None:
    rec = FrameRecorder(fps=10.0)
    assert not rec.add(_frame(1), 0.0)  # not started
    rec.start()
    assert rec.add(_frame(2), 1.0)
    assert rec.add(_frame(3), 1.1)
    frames, fps = rec.stop()
    assert frames.shape == (2, 4, 6, 3)
    assert frames[:, 0, 0, 0].tolist() == [2, 3]
    assert fps == pytest.approx(10.0)
    assert not rec.add(_frame(4), 2.0)  # stopped
    assert rec.stop() == (None, 10.0)


def test_rate_limit_and_playback_fps_from_arrival_times() -> None:
    rec = FrameRecorder(fps=10.0)
    rec.start()
    kept = [rec.add(_frame(i), 0.01 * i) for i in range(101)]  # a 100 Hz camera for 1 s
    frames, fps = rec.stop()
    assert sum(kept) == len(frames) == 11
    assert fps == pytest.approx(10.0, rel=0.05)
    rec.start()  # a camera at exactly fps whose frames arrive with jitter: none dropped
    for i, jitter_s in enumerate([0.0, -0.004, 0.003, -0.002, 0.001, 0.0]):
        rec.add(_frame(i), 0.1 * i + jitter_s)
    assert len(rec.stop()[0]) == 6
    rec.start()  # a 4 Hz camera: the video plays at the speed things happened
    for i in range(5):
        rec.add(_frame(i), 0.25 * i)
    frames, fps = rec.stop()
    assert len(frames) == 5
    assert fps == pytest.approx(4.0)


def test_memory_is_bounded_by_decimation_over_the_whole_span() -> None:
    rec = FrameRecorder(fps=10.0, max_frames=8)
    rec.start()
    for i in range(100):  # 10 s at 10 Hz
        rec.add(_frame(i), 0.1 * i)
    frames, fps = rec.stop()
    assert 4 <= len(frames) < 8
    assert frames[0, 0, 0, 0] == 0
    assert frames[-1, 0, 0, 0] >= 80  # the end of the segment is still in the video
    span_s = 0.1 * (int(frames[-1, 0, 0, 0]) - int(frames[0, 0, 0, 0]))
    assert fps == pytest.approx((len(frames) - 1) / span_s)


def test_frames_of_another_size_are_dropped() -> None:
    rec = FrameRecorder(fps=10.0)
    rec.start()
    rec.add(_frame(1), 0.0)
    rec.add(np.zeros((8, 8, 3), np.uint8), 0.1)
    rec.add(_frame(2), 0.2)
    frames, fps = rec.stop()
    assert frames.shape == (2, 4, 6, 3)
    assert fps == pytest.approx(5.0)


@pytest.mark.parametrize(("fps", "max_frames"), [(0.0, 10), (-1.0, 10), (10.0, 1)])
def test_bad_settings_name_the_value(fps: float, max_frames: int) -> None:
    with pytest.raises(ValueError, match=repr(fps) if fps <= 0 else repr(max_frames)):
        FrameRecorder(fps=fps, max_frames=max_frames)


@pytest.mark.parametrize(
    ("video_fps", "executed_fps", "named"),
    [
        (float("nan"), 10.0, "video_fps"),
        (float("inf"), 10.0, "video_fps"),
        (2.5, float("nan"), "executed_video_fps"),  # was read as 0: recording silently off
        (2.5, float("inf"), "executed_video_fps"),
        (2.5, -1.0, "executed_video_fps"),
    ],
)
def test_goal_media_refuses_non_finite_rates_naming_them(
    tmp_path, video_fps: float, executed_fps: float, named: str
) -> None:
    with pytest.raises(ValueError, match=f"{named} must be"):
        GoalMedia(tmp_path, video_fps, executed_fps, log=None)
