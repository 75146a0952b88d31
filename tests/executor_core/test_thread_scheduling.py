"""keep_thread_scheduling: an SVT-AV1 encode does not leave the thread real-time."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from executor_core.video_io import keep_thread_scheduling


def _encode_av1(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libsvtav1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for k in range(4):
            frame = np.full((64, 64, 3), 40 * k, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _scheduling() -> tuple[int, int]:
    return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority


def test_an_av1_encode_inside_the_guard_keeps_the_threads_scheduling(tmp_path) -> None:
    before = _scheduling()
    with keep_thread_scheduling():
        _encode_av1(tmp_path / "a.mp4")
    assert _scheduling() == before
    assert (tmp_path / "a.mp4").stat().st_size > 0


def test_without_the_guard_the_encoder_makes_the_thread_real_time(tmp_path) -> None:
    """Why the guard exists. Only where the process may raise its priority (root or
    CAP_SYS_NICE, as in CI); elsewhere the encoder cannot, and there is nothing to show."""
    before = _scheduling()
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        pytest.skip("this process may not use real-time scheduling, so neither may SVT-AV1")
    os.sched_setscheduler(0, before[0], os.sched_param(before[1]))
    with keep_thread_scheduling():  # the test's own clean-up
        _encode_av1(tmp_path / "b.mp4")
        assert _scheduling() == (os.SCHED_FIFO, 99)
    assert _scheduling() == before


def _batch_then_fail() -> None:
    with keep_thread_scheduling():
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        raise RuntimeError("encoder failed")


def test_a_changed_policy_is_restored_even_when_the_body_raises() -> None:
    before = _scheduling()
    try:
        with pytest.raises(RuntimeError, match="encoder failed"):
            _batch_then_fail()
    finally:
        if _scheduling() != before:  # do not leave a broken guard's change to other tests
            os.sched_setscheduler(0, before[0], os.sched_param(before[1]))
            pytest.fail("the policy was not restored")
