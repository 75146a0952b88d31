"""The executing judge: success is what the arm does when it follows the video; the score
adds the consistency score; every stage that takes a judge can select it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from executor_core.config_cli import parse_config
from executor_sim.env import EnvConfig, make_env
from executor_sim.probe_videos import render_probe
from self_distillation.executed_success import ExecutedSuccessConfig
from self_distillation.grpo_trainer import PRESETS as GRPO_PRESETS
from self_distillation.grpo_trainer import GRPOConfig
from self_distillation.judges.executed import ExecutedJudge, ExecutedJudgeConfig
from self_distillation.judging import JudgeConfig, judge_videos, make_judge

os.environ.setdefault("MUJOCO_GL", "egl")
IDM = Path(__file__).resolve().parents[3] / "checkpoints" / "idm_sim"
CASES = ((1_000_400, "pick_place"), (1_000_401, "push"))


@pytest.fixture(scope="module")
def probes() -> dict[str, list]:
    env = make_env(EnvConfig(image_size_px=64))
    try:
        return {
            kind: [render_probe(env, kind, seed, family) for seed, family in CASES]
            for kind in ("expert", "frozen", "copy_at_goal")
        }
    finally:
        env.close()


def test_executed_judge_scores_execution_plus_consistency(probes) -> None:
    cfg = ExecutedJudgeConfig(ExecutedSuccessConfig(idm_path=IDM), executed_weight=0.5)
    judge = make_judge(JudgeConfig(kind="executed", executed=cfg))
    assert isinstance(judge, ExecutedJudge)
    verdicts = {
        kind: judge_videos(judge, [p.frames for p in ps], [p.record for p in ps])
        for kind, ps in probes.items()
    }
    assert any(v.success for v in verdicts["expert"]), [v.reason for v in verdicts["expert"]]
    for kind in ("frozen", "copy_at_goal"):  # the arm does nothing: nothing executes
        assert not any(v.success for v in verdicts[kind]), kind
    for v in (*verdicts["expert"], *verdicts["frozen"], *verdicts["copy_at_goal"]):
        assert v.score == pytest.approx(0.5 * float(v.success) + 0.5 * v.consistency)
        assert "executed" in v.details
    # a copy appearing at the goal is inconsistent, a frozen video is not: ranked apart
    assert max(v.score for v in verdicts["copy_at_goal"]) < min(v.score for v in verdicts["frozen"])


def test_stages_select_the_executed_judge_from_the_command_line() -> None:
    cfg = parse_config(
        GRPOConfig,
        ["--preset", "debug", "--judge.kind", "executed", "--judge.executed.executed_weight=1"],
        GRPO_PRESETS,
    )
    assert cfg.judge.kind == "executed"
    assert cfg.judge.executed.executed_weight == 1.0
    with pytest.raises(ValueError, match="executed_weight"):
        ExecutedJudgeConfig(executed_weight=1.5)


def test_min_consistency_makes_an_inconsistent_execution_a_failure(probes) -> None:
    expert = probes["expert"]
    base = ExecutedSuccessConfig(idm_path=IDM)
    plain = ExecutedJudge(ExecutedJudgeConfig(base))
    verdicts = plain.judge_many([p.frames for p in expert], [p.record for p in expert])
    executed = [v for v in verdicts if v.details["executed"]["success"]]
    assert executed, [v.reason for v in verdicts]
    strict = ExecutedJudge(ExecutedJudgeConfig(base, min_consistency=0.9), idm=plain.idm)
    seen = strict.visual.judge

    def less_consistent(video, episode):  # the same verdict with a consistency of 0.5
        return replace(seen(video, episode), consistency=0.5)

    strict.visual.judge = less_consistent
    again = strict.judge_many([p.frames for p in expert], [p.record for p in expert])
    for v in again:
        assert not v.success  # executes, but its consistency 0.5 < 0.9
        assert v.score == pytest.approx(0.5 * v.task + 0.5 * 0.5)
    assert sum(v.task for v in again) == len(executed)  # the execution itself is unchanged
    with pytest.raises(ValueError, match="min_consistency"):
        ExecutedJudgeConfig(min_consistency=-0.1)


def test_the_judge_keeps_its_workers_for_its_life(probes) -> None:
    """An RL run judges a batch every step: the workers start once, on the first batch."""
    videos = [p.frames for p in probes["frozen"][:2]]
    records = [p.record for p in probes["frozen"][:2]]
    judge = ExecutedJudge(ExecutedJudgeConfig(ExecutedSuccessConfig(idm_path=IDM, workers=2)))
    assert judge._pool is None
    first = judge.judge_many(videos, records)
    pool = judge._pool
    workers = set(pool._pool._processes)
    again = judge.judge_many(videos, records)
    assert judge._pool is pool
    assert set(pool._pool._processes) == workers
    assert [v.score for v in first] == [v.score for v in again]
    judge.close()
    assert judge._pool is None
