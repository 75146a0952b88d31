"""Executed success: imagined videos executed in the simulator by the committed IDM through the
goal runner (one segment, no replanning). Expert clips (the video models' format) mostly
execute, a frozen video never does, and the process pool changes nothing but the speed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.test_doubles import TinyRandomInverseDynamics
from executor_sim.env import EnvConfig, make_env
from executor_sim.probe_videos import render_probe
from self_distillation.executed_success import (
    ExecutedSuccessConfig,
    ExecutionPool,
    GivenVideo,
    SimStart,
    execute_videos,
)
from self_distillation.task_items import load_items

os.environ.setdefault("MUJOCO_GL", "egl")
IDM = Path(__file__).resolve().parents[2] / "checkpoints" / "idm_sim"
# held-out seeds, one per family
CASES = ((1_000_400, "pick_place"), (1_000_401, "push"), (1_000_402, "stack"))


@pytest.fixture(scope="module")
def clips() -> dict[str, list]:
    """Expert and frozen probe clips: 16 frames at stride 4, 64 px."""
    env = make_env(EnvConfig(image_size_px=64))
    try:
        return {
            kind: [render_probe(env, kind, seed, family) for seed, family in CASES]
            for kind in ("expert", "frozen")
        }
    finally:
        env.close()


def _run(probes: list, **overrides) -> list:
    cfg = ExecutedSuccessConfig(idm_path=IDM, **overrides)
    starts = [SimStart.from_record(p.record) for p in probes]
    return execute_videos([p.frames for p in probes], starts, cfg).results


@pytest.mark.skipif(not IDM.is_dir(), reason="the committed IDM checkpoints/idm_sim is missing")
def test_expert_videos_execute_and_frozen_ones_do_not(clips) -> None:
    assert all(p.frames.shape == (16, 64, 64, 3) for p in clips["expert"])
    expert = _run(clips["expert"], keep_frames=True)
    assert sum(r.success for r in expert) >= 2, [r.message for r in expert]
    for r in expert:
        assert r.seconds > 0
        assert r.executed.shape[0] == r.steps + 1  # the first frame, then one per step
        assert "after 0 replan(s)" in r.message or r.success
    frozen = _run(clips["frozen"])
    assert not any(r.success for r in frozen)
    assert all("task predicate not met after 0 replan(s)" in r.message for r in frozen)


@pytest.mark.skipif(not IDM.is_dir(), reason="the committed IDM checkpoints/idm_sim is missing")
def test_a_process_pool_gives_the_same_results(clips) -> None:
    probes = [clips["expert"][0], clips["frozen"][1], clips["expert"][2]]
    alone = [r.to_record() for r in _run(probes, workers=1)]
    pooled = [r.to_record() for r in _run(probes, workers=2)]
    for a, b in zip(alone, pooled, strict=True):
        a.pop("seconds")
        b.pop("seconds")
    assert pooled == alone


def test_a_kept_pool_reuses_its_workers_across_batches(clips) -> None:
    """The RL reward executes a batch every step: the workers (imports, IDM, scene) start
    once, and a kept pool gives what a pool started per call gives."""
    torch.manual_seed(0)
    robot = RobotDescription.from_yaml(default_robot_path())
    idm = TinyRandomInverseDynamics(robot.joint_names, robot.home_rad, max_step_rad=0.005)
    cfg = ExecutedSuccessConfig(idm_path=Path("no/such/idm"), workers=2)
    probes = clips["expert"][:2]
    videos, starts = [p.frames for p in probes], [SimStart.from_record(p.record) for p in probes]
    one_call = execute_videos(videos, starts, cfg, idm=idm)
    with ExecutionPool(cfg, idm) as pool:
        first = execute_videos(videos, starts, cfg, pool=pool)
        workers = set(pool._pool._processes)
        again = execute_videos(videos, starts, cfg, pool=pool)
        assert set(pool._pool._processes) == workers
        with pytest.raises(ValueError, match="the pool executes with"):
            execute_videos(videos, starts, ExecutedSuccessConfig(workers=3), pool=pool)
    records = [
        [r.to_record() | {"seconds": 0} for r in b.results] for b in (one_call, first, again)
    ]
    assert records[0] == records[1] == records[2]
    with pytest.raises(RuntimeError, match="the execution pool is closed"):
        pool.map([])
    with pytest.raises(ValueError, match="workers >= 2, got 1"):
        ExecutionPool(ExecutedSuccessConfig())


def test_runs_are_deterministic_and_one_segment_with_a_test_double(clips) -> None:
    torch.manual_seed(0)
    robot = RobotDescription.from_yaml(default_robot_path())
    idm = TinyRandomInverseDynamics(robot.joint_names, robot.home_rad, max_step_rad=0.005)
    cfg = ExecutedSuccessConfig(idm_path=Path("no/such/idm"))
    probes = clips["expert"][:2]
    starts = [SimStart.from_record(p.record) for p in probes]
    first = execute_videos([p.frames for p in probes], starts, cfg, idm=idm)
    again = execute_videos([p.frames for p in probes], starts, cfg, idm=idm)
    assert [r.to_record() | {"seconds": 0} for r in first.results] == [
        r.to_record() | {"seconds": 0} for r in again.results
    ]
    for r in first.results:
        assert not r.success  # a random IDM does not do the task
        assert r.steps == 15 * 4  # one segment: one 4-step chunk per imagined goal frame
    assert first.seconds_per_video > 0
    assert first.success_rate == 0.0


def test_starts_come_from_items_and_records(debug_items: Path) -> None:
    item = next(it for it in load_items(debug_items) if it.seed is not None)
    start = SimStart.from_item(item)
    assert start.seed == item.seed
    assert start.task_family == item.proposal.metadata["task_family"]
    assert start.reset_family is None  # the seed's own family, as the items were rendered
    env = make_env(EnvConfig(image_size_px=32))
    try:
        task = start.reset(env)
        assert env.task is task
        assert task.obj == item.proposal.metadata["object"]
        np.testing.assert_array_equal(env.render(), item.image_rgb)  # the item's first frame
    finally:
        env.close()
    record = {"seed": 5, "task_family": "stack", "object": "red", "target": "blue"}
    assert SimStart.from_record(record) == SimStart(5, "stack", "red", "blue")
    pick = {"seed": 5, "task_family": "pick_place", "object": "red", "target": "bowl"}
    assert SimStart.from_record(pick).target == ""


def test_bad_input_is_named(synthetic_items: Path) -> None:
    real = load_items(synthetic_items)[0]  # a scene without a simulator seed
    with pytest.raises(ValueError, match=r"item 'img0-0' is not a simulator task: seed .* None"):
        SimStart.from_item(real)
    with pytest.raises(ValueError, match="'fly'"):
        SimStart(0, "fly", "red")
    with pytest.raises(ValueError, match=r"lacks \['object'\]"):
        SimStart.from_record({"seed": 1, "task_family": "push"})
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        ExecutedSuccessConfig(workers=0)
    with pytest.raises(ValueError, match="'sideways'"):
        ExecutedSuccessConfig(idm_mode="sideways")
    good = np.zeros((4, 16, 16, 3), np.uint8)
    start = SimStart(0, "push", "red")
    with pytest.raises(ValueError, match=r"video 1 must be .* \(4, 16, 8, 3\)"):
        execute_videos([good, np.zeros((4, 16, 8, 3), np.uint8)], [start, start])
    with pytest.raises(ValueError, match="2 videos for 1 starts"):
        execute_videos([good, good], [start])
    assert GivenVideo(good)(np.zeros((8, 8, 3), np.uint8), "x", 3) is good


def test_a_worker_that_cannot_start_ends_the_call(clips, tmp_path: Path) -> None:
    # multiprocessing.Pool restarted such a worker forever: the call never returned
    probes = clips["frozen"][:2]
    cfg = ExecutedSuccessConfig(idm_path=tmp_path / "no_idm_here", workers=2)
    starts = [SimStart.from_record(p.record) for p in probes]
    with pytest.raises(RuntimeError, match=r"worker process failed to start.*no_idm_here"):
        execute_videos([p.frames for p in probes], starts, cfg)
