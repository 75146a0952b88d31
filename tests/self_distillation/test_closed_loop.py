"""run_stack: the goal runner on the simulator with tiny test-double models. Closed loop
(the default) tracks the imagined frames from the simulator's own camera frames; open loop
chains all chunks up front; targets are made feasible as on the robot; a bad ``idm_mode``
is named. ``max_replans`` counts re-imaginings after the first segment."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from executor_core.config_cli import parse_config
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.test_doubles import TinyRandomInverseDynamics, TinyRandomVideoModel
from executor_core.types import ActionChunk
from executor_sim.grasp_probe import GRASP_FAMILIES
from self_distillation import evaluate
from self_distillation.closed_loop import (
    ClosedLoopConfig,
    make_env,
    run_expert,
    run_stack,
    write_bench_result,
)
from self_distillation.task_items import load_items

SIZE_PX = 32
NUM_FRAMES = 4  # T: 3 goal frames, 3 chunks of 4 steps per segment


class RecordingIDM:
    """The tiny IDM, keeping what each predict / predict_chunk call was given."""

    def __init__(self, idm: TinyRandomInverseDynamics) -> None:
        self.idm = idm
        self.chunk_frames: list[np.ndarray] = []
        self.chunk_states: list[np.ndarray | None] = []
        self.predict_calls = 0

    def predict(self, frames: np.ndarray, joint_positions_rad: np.ndarray | None) -> list:
        self.predict_calls += 1
        return self.idm.predict(frames, joint_positions_rad)

    def predict_chunk(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> ActionChunk:
        self.chunk_frames.append(frames.copy())
        q = joint_positions_rad
        self.chunk_states.append(None if q is None else np.array(q))
        return self.idm.predict_chunk(frames, joint_positions_rad)


class RecordingVideoModel(TinyRandomVideoModel):
    def __init__(self) -> None:
        super().__init__(size_px=SIZE_PX, num_frames=NUM_FRAMES)
        self.videos: list[np.ndarray] = []
        self.prompts: list[str] = []

    def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        self.prompts.append(prompt)
        video = super().__call__(image_rgb, prompt, seed)
        self.videos.append(video)
        return video


@pytest.fixture(scope="module")
def env():
    sim = make_env(SIZE_PX)
    yield sim
    sim.close()


@pytest.fixture
def models():
    torch.manual_seed(0)
    robot = RobotDescription.from_yaml(default_robot_path())
    # small random steps: the random IDM stays inside the joint range over a few segments
    tiny = TinyRandomInverseDynamics(robot.joint_names, robot.home_rad, max_step_rad=0.005)
    idm = RecordingIDM(tiny)
    return RecordingVideoModel(), idm


def _item(debug_items: Path):
    return next(it for it in load_items(debug_items) if it.seed is not None)


def test_closed_loop_is_the_default_and_tracks_from_the_simulators_frames(
    env, models, debug_items: Path
) -> None:
    video_model, idm = models
    cfg = ClosedLoopConfig(
        max_replans=1, max_steps=1000, image_size_px=SIZE_PX, replan_from_home=False
    )
    assert cfg.idm_mode == "closed_loop"
    result = run_stack(env, _item(debug_items), "executor_rl", video_model, idm, cfg, seed=5)
    assert not result.success  # random models; the task is not solved by chance
    assert result.message.startswith("task predicate not met after 1 replan(s)")
    assert idm.predict_calls == 0  # no open-loop chaining
    assert result.replans == 1
    assert result.steps == 2 * (NUM_FRAMES - 1) * 4  # (T-1) chunks of 4 steps per segment
    assert result.executed.shape[0] == result.steps + 1
    assert len(idm.chunk_frames) == 2 * (NUM_FRAMES - 1)
    for n, frames in enumerate(idm.chunk_frames):
        segment, i = divmod(n, NUM_FRAMES - 1)
        # the simulator's frame after the 4 steps of every earlier chunk, and the next goal
        np.testing.assert_array_equal(frames[0], result.executed[4 * n])
        np.testing.assert_array_equal(frames[1], video_model.videos[segment][i + 1])
    # each segment is imagined from the simulator's frame where the previous one ended
    np.testing.assert_array_equal(video_model.videos[1][0], result.executed[4 * (NUM_FRAMES - 1)])
    assert [v.shape for v in result.imagined] == [(NUM_FRAMES, SIZE_PX, SIZE_PX, 3)] * 2
    # the measured state goes in, not the previous chunk's last target
    assert all(s is not None and s.shape == (6,) for s in idm.chunk_states)


def test_closed_loop_stops_at_the_step_budget(env, models, debug_items: Path) -> None:
    video_model, idm = models
    cfg = ClosedLoopConfig(max_replans=3, max_steps=6, image_size_px=SIZE_PX)
    result = run_stack(env, _item(debug_items), "executor_rl", video_model, idm, cfg, seed=5)
    assert result.steps == 6
    assert result.replans == 0
    assert result.message == "goal timeout of 0.6 s exceeded"
    assert len(idm.chunk_frames) == 2  # the second chunk is cut after 2 of its 4 steps


class BeyondLimitsIDM(RecordingIDM):
    """Chunks whose every target is ``excess_rad`` past the joints' upper limits."""

    def __init__(
        self, idm: TinyRandomInverseDynamics, upper_rad: np.ndarray, excess_rad: float
    ) -> None:
        super().__init__(idm)
        self.upper_rad, self.excess_rad = upper_rad, excess_rad

    def predict_chunk(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> ActionChunk:
        chunk = super().predict_chunk(frames, joint_positions_rad)
        beyond = np.tile(self.upper_rad + self.excess_rad, (chunk.joint_positions_rad.shape[0], 1))
        return ActionChunk(beyond.astype(np.float32), chunk.control_rate_hz, chunk.joint_names)


def test_targets_beyond_the_limits_are_handled_as_on_the_robot(
    env, models, debug_items: Path
) -> None:
    video_model, idm = models
    cfg = ClosedLoopConfig(max_replans=0, max_steps=6, image_size_px=SIZE_PX)
    # within limit_tolerance_rad (0.05): put on the limit, so the simulator clips nothing
    near = BeyondLimitsIDM(idm.idm, env.upper_rad, 0.03)
    result = run_stack(env, _item(debug_items), "executor_rl", video_model, near, cfg, 5)
    assert result.steps == 6
    assert result.clipped_actions == 0
    assert result.to_record()["clipped_actions"] == 0
    # further out: the goal aborts before the arm moves, naming the joint (the node's rule)
    far = BeyondLimitsIDM(idm.idm, env.upper_rad, 0.1)
    result = run_stack(env, _item(debug_items), "executor_rl", video_model, far, cfg, 5)
    assert result.steps == 0
    assert not result.success
    assert "outside the joint range: joint 'wrist_roll'" in result.message


def test_open_loop_still_chains_all_chunks_up_front(env, models, debug_items: Path) -> None:
    video_model, idm = models
    cfg = ClosedLoopConfig(
        max_replans=1,
        max_steps=1000,
        image_size_px=SIZE_PX,
        idm_mode="open_loop",
        replan_from_home=False,
    )
    result = run_stack(env, _item(debug_items), "executor_rl", video_model, idm, cfg, seed=5)
    assert idm.chunk_frames == []
    assert idm.predict_calls == 2
    assert result.steps == 2 * (NUM_FRAMES - 1) * 4


def test_bad_idm_mode_is_named() -> None:
    with pytest.raises(ValueError, match=r"idm_mode must be one of .*got 'closedloop'"):
        ClosedLoopConfig(idm_mode="closedloop")
    with pytest.raises(ValueError, match="'blind'"):
        parse_config(evaluate.EvalConfig, ["--closed_loop.idm_mode=blind"], evaluate.PRESETS)
    cfg = parse_config(evaluate.EvalConfig, ["--closed_loop.idm_mode=open_loop"], evaluate.PRESETS)
    assert cfg.closed_loop.idm_mode == "open_loop"


def test_demonstrator_solution_imagines_from_the_detailed_solution(
    env, models, debug_items: Path
) -> None:
    video_model, idm = models
    item = _item(debug_items)
    cfg = ClosedLoopConfig(max_replans=0, conditions=("demonstrator_solution",))
    result = run_stack(env, item, "demonstrator_solution", video_model, idm, cfg, seed=0)
    assert video_model.prompts == [item.proposal.solution_text]
    assert result.prompt == item.proposal.solution_text
    run_stack(env, item, "demonstrator_prompt", video_model, idm, cfg, seed=0)
    assert video_model.prompts[-1] != item.proposal.solution_text


def test_episode_ends_the_step_the_task_succeeds(
    env, models, debug_items: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from executor_sim.tasks import Task

    calls = {"n": 0}

    def succeeds_on_fifth_check(self, env) -> bool:
        calls["n"] += 1
        return calls["n"] >= 5

    monkeypatch.setattr(Task, "is_success", succeeds_on_fifth_check)
    video_model, idm = models
    cfg = ClosedLoopConfig(
        max_replans=3, max_steps=1000, image_size_px=SIZE_PX, replan_from_home=False
    )
    result = run_stack(env, _item(debug_items), "executor_rl", video_model, idm, cfg, seed=5)
    # Asked after each chunk: after chunks 1, 2 and the segment's end (3 checks), then
    # after the second segment's chunks 1 and 2: the 5th check says yes, nothing more moves.
    assert result.success
    assert result.message.startswith("task done")
    assert calls["n"] == 5
    assert result.steps == (NUM_FRAMES - 1) * 4 + 2 * 4
    assert result.replans == 1
    assert len(idm.chunk_frames) == (NUM_FRAMES - 1) + 2

    # without verify_each_chunk the task is checked once per segment: 4 checks, never a 5th
    calls["n"] = 0
    late = ClosedLoopConfig(
        max_replans=3,
        max_steps=1000,
        image_size_px=SIZE_PX,
        verify_each_chunk=False,
        replan_from_home=False,
    )
    result = run_stack(env, _item(debug_items), "executor_rl", video_model, idm, late, seed=5)
    assert calls["n"] == 4
    assert not result.success
    assert result.steps == 4 * (NUM_FRAMES - 1) * 4


class SwingingIDM(RecordingIDM):
    """Every chunk swings the shoulder and opens the gripper by 0.03 rad a step (slow
    enough that retiming leaves the chunk's clock alone: 4 steps a chunk)."""

    def predict_chunk(
        self, frames: np.ndarray, joint_positions_rad: np.ndarray | None
    ) -> ActionChunk:
        chunk = super().predict_chunk(frames, joint_positions_rad)
        q0 = np.asarray(joint_positions_rad, dtype=np.float32)
        steps = np.arange(1, chunk.horizon + 1, dtype=np.float32)[:, None] * 0.03
        targets = np.repeat(q0[None], chunk.horizon, 0)
        targets[:, [0, 5]] += steps
        return ActionChunk(targets, chunk.control_rate_hz, chunk.joint_names)


def test_replans_start_from_the_home_pose(env, models, debug_items: Path) -> None:
    video_model, tiny = models
    idm = SwingingIDM(tiny.idm)
    cfg = ClosedLoopConfig(max_replans=1, max_steps=1000, image_size_px=SIZE_PX)
    assert cfg.replan_from_home
    states: list[np.ndarray] = []
    real_step = env.step

    def recording_step(action_rad: np.ndarray) -> dict:
        obs = real_step(action_rad)
        states.append(obs["state"].copy())
        return obs

    env.step = recording_step
    try:
        result = run_stack(env, _item(debug_items), "executor_rl", video_model, idm, cfg, seed=5)
    finally:
        del env.step
    segment_steps = (NUM_FRAMES - 1) * 4
    homing_steps = result.steps - 2 * segment_steps
    assert result.replans == 1
    assert homing_steps > 0
    # the second video is imagined from the camera frame after the homing move, where the
    # arm joints are back near home and the gripper kept its position
    at_second = segment_steps + homing_steps
    np.testing.assert_array_equal(video_model.videos[1][0], result.executed[at_second])
    q_before, q_home = states[segment_steps - 1], states[at_second - 1]
    home = env.robot.home_rad
    assert np.abs(q_home[:5] - home[:5]).max() < np.abs(q_before[:5] - home[:5]).max()
    assert np.abs(q_home[:5] - home[:5]).max() < 0.15  # tracking lag of the position servos
    assert abs(q_home[5] - q_before[5]) < 0.05


def test_bench_result_names_its_command_hardware_and_records(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    started = time.perf_counter()
    summary = {"per_interval": {"n": 2, "success": 0.5}}
    records = [{"seed": 1, "success": True}, {"seed": 2, "success": False}]
    write_bench_result(
        out, "benchmarks/x.py", ["--items", "2"], 3, {"split": "seen"}, summary, records, started
    )
    saved = json.loads(out.read_text())
    assert saved["command"] == "benchmarks/x.py --items 2"
    assert saved["hardware"].endswith("-core CPU, 3 worker processes")
    assert saved["split"] == "seen"
    assert saved["summary"] == summary
    assert saved["records"] == records
    assert saved["wall_s"] >= 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"command": "benchmarks/x.py --items 2", "summary": summary}


def test_episodes_record_where_the_jaws_closed(env, models, debug_items: Path) -> None:
    """The expert's episode and the stack's carry the grasp probe's closings; the expert's
    grasp closes on the cube (a grasp item of the debug set)."""
    items = [it for it in load_items(debug_items) if it.seed is not None]
    item = next(it for it in items if it.proposal.metadata["task_family"] in GRASP_FAMILIES)
    cfg = ClosedLoopConfig(max_replans=0, max_steps=200, image_size_px=SIZE_PX)
    expert = run_expert(env, item, cfg)
    assert expert.grasps, expert.to_record()
    assert expert.grasps[0]["xy_mm"] < 3.0
    assert expert.to_record()["grasps"] == expert.grasps
    video_model, idm = models
    result = run_stack(env, item, "executor_rl", video_model, idm, cfg, seed=5)
    # the random IDM's gripper commands: every closing from open is one record
    assert all(set(g) == {"xy_mm", "z_mm"} for g in result.grasps)
    assert result.to_record()["grasps"] == result.grasps
    # the expert comes down to the cube with the jaws open
    assert expert.nearest_open is not None
    assert expert.nearest_open["distance_mm"] < 10.0, expert.nearest_open
    assert result.to_record()["nearest_open"] == result.nearest_open


class OpenThenShutIDM:
    """An IDM double that keeps the arm where it is, opens the jaws, then shuts them."""

    def predict_chunk(self, frames: np.ndarray, joint_positions_rad: np.ndarray) -> ActionChunk:
        targets = np.repeat(np.asarray(joint_positions_rad, np.float32)[None], 4, axis=0)
        targets[:, -1] = [0.7, 0.7, -0.15, -0.15]
        names = RobotDescription.from_yaml(default_robot_path()).joint_names
        return ActionChunk(targets, 10.0, names)


@pytest.mark.parametrize(("gate_m", "closes"), [(0.0, True), (0.03, False)])
def test_the_grasp_gate_keeps_the_jaws_open_above_the_table(
    env, models, debug_items: Path, gate_m: float, closes: bool
) -> None:
    """From the home pose (the gripper ~13 cm up), every closing is held with a 3 cm gate:
    the grasp probe sees none, the record counts the held points; without a gate, each
    chunk closes the jaws once."""
    items = [it for it in load_items(debug_items) if it.seed is not None]
    item = next(it for it in items if it.proposal.metadata["task_family"] in GRASP_FAMILIES)
    cfg = ClosedLoopConfig(
        max_replans=0, max_steps=60, image_size_px=SIZE_PX, grasp_gate_max_height_m=gate_m
    )
    video_model, _ = models
    result = run_stack(env, item, "executor_rl", video_model, OpenThenShutIDM(), cfg, seed=5)
    chunks = NUM_FRAMES - 1
    if closes:
        assert len(result.grasps) == chunks, result.to_record()
        assert result.gate_held_points == 0
    else:
        assert result.grasps == []
        assert result.gate_held_points == 2 * chunks
    assert result.to_record()["gate_held_points"] == result.gate_held_points


@pytest.mark.parametrize("height", [-0.01, float("nan")])
def test_a_bad_grasp_gate_height_is_named(height: float) -> None:
    with pytest.raises(ValueError, match="grasp_gate_max_height_m must be >= 0 and finite"):
        ClosedLoopConfig(grasp_gate_max_height_m=height)
