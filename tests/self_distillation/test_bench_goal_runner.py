"""``benchmarks/bench_goal_runner.py``'s grasp figure: the first closing's miss of the cube,
per outcome, over the grasp tasks' episodes (push is left out)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.fixture
def bench(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("benchmarks/bench_goal_runner.py")


def _row(family: str, success: bool, grasps: list[float]) -> dict:
    closings = [{"xy_mm": g, "z_mm": 0.0} for g in grasps]
    return {"family": family, "v": {"success": success, "grasps": closings}}


def test_first_grasps_by_outcome(bench: ModuleType) -> None:
    rows = [
        _row("pick_place", True, [1.0, 40.0]),  # only the first closing counts
        _row("stack", True, [3.0]),
        _row("pick_place", False, [12.0]),
        _row("stack", False, [20.0, 2.0]),
        _row("stack", False, []),  # never closed
        _row("push", False, [99.0]),  # not a grasp task
    ]
    out = bench.first_grasps(rows, "v")
    assert out["solved"] == {
        "episodes": 2, "never_closed": 0, "median": 2.0, "p25": 1.5, "p75": 2.5,
    }  # fmt: skip
    assert out["failed"]["episodes"] == 3
    assert out["failed"]["never_closed"] == 1
    assert out["failed"]["median"] == 16.0


def test_rows_without_grasps_give_no_figure(bench: ModuleType) -> None:
    """Results written before the probe (no "grasps" key) are skipped, not counted as
    episodes that never closed."""
    rows = [{"family": "stack", "v": {"success": False}}]
    assert bench.first_grasps(rows, "v") == {}
