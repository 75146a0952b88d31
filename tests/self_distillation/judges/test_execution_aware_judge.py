"""The execution-aware judge on probe videos rendered by the simulator: expert episodes pass
all three scores; each adversarial kind fails, on the score that is meant to catch it, while
the old judge accepts several of them."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

from executor_sim.env import EnvConfig, make_env
from executor_sim.probe_videos import ADVERSARIAL_KINDS, ProbeConfig, render_probe
from self_distillation.judges import (
    ExecutionAwareJudge,
    ExecutionAwareJudgeConfig,
    ExecutionAwareVerdict,
    JudgeVerdict,
    ProgrammaticJudge,
    VideoJudge,
)
from self_distillation.judging import JudgeConfig, make_judge

os.environ.setdefault("MUJOCO_GL", "egl")
# held-out seeds, one per family (pick_place, push, stack)
CASES = ((1_000_200, "pick_place"), (1_000_201, "push"), (1_000_202, "stack"))
# the score each adversarial kind must fail (others may fail too)
CAUGHT_BY = {
    "frozen": "task",
    "teleport": "agent",
    "copy_at_goal": "consistency",
    "wrong_cube": "task",
    "hold": "task",
    "slide": "agent",
}


@pytest.fixture(scope="module")
def env():
    sim = make_env(EnvConfig(image_size_px=64))
    yield sim
    sim.close()


@pytest.fixture(scope="module")
def judge() -> ExecutionAwareJudge:
    return ExecutionAwareJudge()


@pytest.mark.parametrize(("seed", "family"), CASES)
def test_expert_videos_pass_all_three(env, judge, seed: int, family: str) -> None:
    probe = render_probe(env, "expert", seed, family)
    assert probe.valid, probe.note
    assert probe.predicate, probe.note
    verdict = judge.judge(probe.frames, probe.record)
    assert verdict.success, verdict.reason
    assert verdict.scores == {"task": 1.0, "agent": 1.0, "consistency": 1.0}
    assert verdict.score == 1.0
    assert verdict.reason == "all three pass"


@pytest.mark.parametrize("kind", ADVERSARIAL_KINDS)
@pytest.mark.parametrize(("seed", "family"), CASES)
def test_adversarial_videos_fail_on_their_score(
    env, judge, kind: str, seed: int, family: str
) -> None:
    probe = render_probe(env, kind, seed, family)
    assert probe.valid, probe.note
    verdict = judge.judge(probe.frames, probe.record)
    assert not verdict.success, f"{kind}: {verdict.reason}"
    caught = CAUGHT_BY[kind]
    assert not verdict.details["passed"][caught], f"{kind} passes {caught}: {verdict.reason}"
    assert getattr(verdict, caught) < 1.0
    assert caught in verdict.reason
    assert 0.0 <= verdict.score < 1.0


@pytest.mark.parametrize(("seed", "family"), CASES)
def test_the_old_judge_accepts_what_the_arm_did_not_do(env, seed: int, family: str) -> None:
    # The reason for the new judge: a teleport and a slide with the arm idle pass the old one.
    old = ProgrammaticJudge()
    for kind in ("teleport", "slide"):
        probe = render_probe(env, kind, seed, family)
        assert old.judge(probe.frames, probe.record).success, kind


@pytest.mark.parametrize(
    ("seed", "family", "variant"), [(*CASES[1], "pushed"), (*CASES[2], "lowered")]
)
def test_a_held_cube_on_the_goal_scores_half_a_task(
    env, judge, seed: int, family: str, variant: str
) -> None:
    probe = render_probe(env, "hold", seed, family)
    assert probe.details["variant"] == variant
    verdict = judge.judge(probe.frames, probe.record)
    assert verdict.task == 0.5  # on the goal and still, but the arm has not let go
    assert "still at the" in verdict.details["why"]["task"]


def test_a_copy_appearing_while_the_arm_works_is_inconsistent(env, judge) -> None:
    # The copy of the task cube is pasted into a video whose arm moves another cube: the
    # arm is busy, so only the consistency checks can tell.
    seed, family = CASES[0]
    busy = render_probe(env, "wrong_cube", seed, family)
    copy = render_probe(env, "copy_at_goal", seed, family)
    k = copy.details["appear_frame"]
    pasted = np.any(copy.frames[-1] != copy.frames[0], axis=-1)
    frames = busy.frames.copy()
    for t in range(k, len(frames)):
        where = pasted & ~judge.arm_mask(frames[t])
        frames[t][where] = copy.frames[-1][where]
    verdict = judge.judge(frames, busy.record)
    obj = busy.record["object"]
    why = verdict.details["why"]["consistency"]
    assert f"{obj} duplicated" in why or f"{obj} grew" in why, why


def test_tolerances_scale_with_the_frame_size() -> None:
    sim = make_env(EnvConfig(image_size_px=128))
    try:
        cfg = ProbeConfig(image_size_px=128)
        judge = ExecutionAwareJudge()
        expert = render_probe(sim, "expert", *CASES[1], cfg=cfg)
        assert judge.judge(expert.frames, expert.record).success
        teleport = render_probe(sim, "teleport", *CASES[1], cfg=cfg)
        assert not judge.judge(teleport.frames, teleport.record).success
    finally:
        sim.close()


def test_verdict_is_a_judge_verdict_with_three_scores(env, judge) -> None:
    probe = render_probe(env, "frozen", *CASES[2])
    verdict = judge.judge(probe.frames, probe.record)
    assert isinstance(verdict, JudgeVerdict)
    assert isinstance(verdict, ExecutionAwareVerdict)
    assert isinstance(judge, VideoJudge)
    assert verdict.score == pytest.approx(sum(verdict.scores.values()) / 3)
    assert verdict.agent == 0.0  # the arm never came to the cube
    with pytest.raises(ValueError, match=r"agent must be in \[0, 1\], got 1\.5"):
        ExecutionAwareVerdict(True, 1.0, "x", agent=1.5)


def test_thresholds_decide_success(env) -> None:
    probe = render_probe(env, "hold", *CASES[2])
    strict = ExecutionAwareJudge().judge(probe.frames, probe.record)
    lenient = ExecutionAwareJudge(ExecutionAwareJudgeConfig(task_pass=0.5))
    assert not strict.success
    assert lenient.judge(probe.frames, probe.record).success  # agent and consistency pass


def test_config_and_input_validation(judge) -> None:
    with pytest.raises(ValueError, match=r"arm_max_saturation .* got 0\.5"):
        ExecutionAwareJudgeConfig(arm_max_saturation=0.5)
    with pytest.raises(ValueError, match=r"max_jump_px must be > 0 and finite, got -1"):
        ExecutionAwareJudgeConfig(max_jump_px=-1)
    with pytest.raises(ValueError, match=r"task_pass must be in \(0, 1\], got 0"):
        replace(ExecutionAwareJudgeConfig(), task_pass=0)
    record = {"prompt": "put the red cube in the bowl"}
    with pytest.raises(ValueError, match="uint8"):
        judge.judge(np.zeros((4, 8, 8, 3), np.float32), record)
    with pytest.raises(ValueError, match="at least 3 frames"):
        judge.judge(np.zeros((2, 8, 8, 3), np.uint8), record)
    with pytest.raises(ValueError, match="'purple'"):
        judge.judge(np.zeros((4, 8, 8, 3), np.uint8), {"prompt": "put the purple cube in the bowl"})


def test_make_judge_offers_it_and_keeps_the_old_default() -> None:
    assert isinstance(make_judge(JudgeConfig()), ProgrammaticJudge)
    assert isinstance(make_judge(JudgeConfig(kind="execution_aware")), ExecutionAwareJudge)
    with pytest.raises(ValueError, match="'magic'"):
        JudgeConfig(kind="magic")
