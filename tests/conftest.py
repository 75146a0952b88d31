"""Checks that hold for every test of the suite."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _scheduling_is_left_as_found():
    """A test must not leave the test process real-time (or otherwise re-scheduled): every
    thread and node process started afterwards would inherit it. LeRobot's default video
    codec (SVT-AV1) does exactly that unless ``executor_core.video_io.keep_thread_scheduling``
    guards the encode; on a 2-core host the ROS tests after it then starve."""
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    yield
    after = os.sched_getscheduler(0), os.sched_getparam(0)
    if after != before:
        os.sched_setscheduler(0, before[0], before[1])  # the tests after it run as before
        pytest.fail(
            f"the test changed the process's scheduling from {before} to {after} "
            "(a video encode without keep_thread_scheduling?)"
        )
