"""``benchmarks/bench_goal_runner.py``'s grasp figures: where the jaws closed against the
cube, per outcome, over the grasp tasks' episodes (push is left out)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.fixture
def bench(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("benchmarks/bench_goal_runner.py")


def _row(family: str, success: bool, grasps: list[tuple[float, float]]) -> dict:
    closings = [{"xy_mm": xy, "z_mm": z} for xy, z in grasps]
    return {"family": family, "v": {"success": success, "grasps": closings}}


def test_grasp_misses_by_outcome(bench: ModuleType) -> None:
    rows = [
        _row("pick_place", True, [(1.0, 0.0), (40.0, 30.0)]),  # first 1, nearest 1
        _row("stack", True, [(3.0, 4.0)]),  # first 3, nearest 5
        _row("pick_place", False, [(12.0, 16.0), (6.0, 8.0)]),  # first 12, nearest 10
        _row("stack", False, [(20.0, 0.0), (30.0, 40.0)]),  # first 20, nearest 20
        _row("stack", False, []),  # never closed
        _row("push", False, [(99.0, 0.0)]),  # not a grasp task
    ]
    out = bench.grasp_misses(rows, "v")
    assert out["solved"]["episodes"] == 2
    assert out["solved"]["never_closed"] == 0
    assert out["solved"]["first_xy"] == {"median": 2.0, "p25": 1.5, "p75": 2.5}
    assert out["solved"]["nearest"]["median"] == 3.0
    assert out["solved"]["nearest"]["within_10"] == 2
    failed = out["failed"]
    assert (failed["episodes"], failed["never_closed"]) == (3, 1)
    assert failed["first_xy"]["median"] == 16.0
    assert failed["nearest"]["median"] == 15.0
    assert (failed["nearest"]["within_10"], failed["nearest"]["within_20"]) == (1, 2)


def test_rows_without_grasps_give_no_figure(bench: ModuleType) -> None:
    """Results written before the probe (no "grasps" key) are skipped, not counted as
    episodes that never closed."""
    rows = [{"family": "stack", "v": {"success": False}}]
    assert bench.grasp_misses(rows, "v") == {}
