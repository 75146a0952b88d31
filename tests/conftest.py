"""Checks that hold for every test of the suite, and the loader of the repository's scripts."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from script_main import MainRun, exit_status

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def load_script(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """``load_script("benchmarks/x.py")``: a script of the repository (not a package module)
    imported under its file's stem, registered in ``sys.modules`` for the test only (its
    dataclasses look their module up there)."""

    def load(relative: str) -> ModuleType:
        path = REPO / relative
        monkeypatch.syspath_prepend(str(path.parent))  # its siblings import as in a script run
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None, path
        assert spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, path.stem, module)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def run_main(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> Callable[..., MainRun]:
    """``run_main("benchmarks/x.py", "--flag", "v")``: the script's ``main(argv)`` run in this
    process. For bad-input checks, which never get past argument validation: a subprocess
    would spend most of its time importing torch. Each script keeps at least one test that
    runs it as a real process."""

    def run(relative: str, *args: str) -> MainRun:
        module = load_script(relative)
        capsys.readouterr()  # only what main writes
        try:
            code = module.main(list(args))
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return MainRun(exit_status(code), captured.out, captured.err)

    return run


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
