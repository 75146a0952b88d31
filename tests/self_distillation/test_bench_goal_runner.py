"""``benchmarks/bench_goal_runner.py``'s grasp figures: where the jaws closed against the
cube, per outcome, over the grasp tasks' episodes (push is left out)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from script_main import MainRun

SCRIPT = "benchmarks/bench_goal_runner.py"


@pytest.fixture
def bench(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script(SCRIPT)


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


def test_the_nearest_open_approach_by_outcome(bench: ModuleType) -> None:
    def approach(distance: float, z: float, xy: float) -> dict:
        return {"distance_mm": distance, "z_mm": z, "xy_mm": xy}

    rows = [
        {"family": "stack", "v": {"success": False, "grasps": [], "nearest_open": a}}
        for a in (approach(30.0, 24.0, 18.0), approach(8.0, 6.0, 5.3), approach(50.0, 40.0, 30.0))
    ]
    rows.append({"family": "stack", "v": {"success": False, "grasps": [], "nearest_open": None}})
    failed = bench.grasp_misses(rows, "v")["failed"]
    assert failed["episodes"] == 4
    assert failed["approach"]["episodes"] == 3  # the one without a record is left out
    assert failed["approach"]["distance"]["median"] == 30.0
    assert failed["approach"]["z"]["median"] == 24.0
    assert failed["approach"]["xy"]["median"] == 18.0
    assert (failed["approach"]["within_10"], failed["approach"]["within_20"]) == (1, 1)


def test_rows_without_grasps_give_no_figure(bench: ModuleType) -> None:
    """Results written before the probe (no "grasps" key) are skipped, not counted as
    episodes that never closed."""
    rows = [{"family": "stack", "v": {"success": False}}]
    assert bench.grasp_misses(rows, "v") == {}


def test_variant_names_carry_the_grasp_gate(bench: ModuleType) -> None:
    assert bench.Variant("per_interval", 1).name == "per_interval"
    assert bench.Variant("per_interval", 4, 30.0).name == "per_interval+best_of_4+gate_30mm"
    assert bench.Variant("uniform", 1, 12.5).name == "uniform+gate_12.5mm"
    assert bench.Variant("uniform", 1, 20.0, True).name == "uniform+gate_20mm_measured"
    assert bench.Variant("uniform", 1, 0.0, True).name == "uniform"  # no gate, nothing measured


@pytest.mark.parametrize("heights", ["abc", "-5", "30,nan", ","])
def test_a_bad_grasp_gate_height_exits_2_naming_it(
    tmp_path: Path, run_main: Callable[..., MainRun], heights: str
) -> None:
    output = tmp_path / "x.json"
    done = run_main(SCRIPT, "--grasp_gate_mm", heights, "--output", str(output))
    assert done.returncode == 2
    assert f"--grasp_gate_mm {heights!r}" in done.stderr
    assert not output.exists()
