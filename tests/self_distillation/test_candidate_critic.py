"""Several imagined candidates per segment, a judge picks the one tracked: on the simulator,
through ``run_stack`` (the goal runner over ``SimArm``), with the committed IDM and the
execution-aware judge as the critic (``JudgeCritic``), reading only the frames and the
prompt. The video model is a test double that replays videos the simulator rendered: a
frozen one (the arm never moves) as candidate 0, the expert's as candidate 1."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from executor_core.goal_runner import CANDIDATE_SEED_STRIDE
from executor_core.policy import Critique
from executor_sim.probe_videos import render_probe
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation.closed_loop import ClosedLoopConfig, make_env, run_stack
from self_distillation.judges.critic import CRITIC_JUDGES, JudgeCritic, make_critic
from self_distillation.judges.execution_aware import ExecutionAwareJudge
from self_distillation.worldtasks_splits import SplitSpec, build_split, item_family

os.environ.setdefault("MUJOCO_GL", "egl")
IDM = Path(__file__).resolve().parents[2] / "checkpoints" / "idm_sim"
SEED = 3  # run_stack's episode seed: segment k, candidate j imagine with 303 + k + j * stride


class ReplayVideoModel:
    """Test double of the Executor: candidate 0 of every segment is ``frozen``, any other
    candidate ``expert`` (videos the simulator rendered from this item's first frame)."""

    def __init__(self, frozen: np.ndarray, expert: np.ndarray) -> None:
        self.frozen, self.expert = frozen, expert
        self.seeds: list[int] = []

    def __call__(self, image_rgb: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        self.seeds.append(seed)
        candidate = (seed - SEED * 101) // CANDIDATE_SEED_STRIDE
        return (self.frozen if candidate == 0 else self.expert).copy()


@pytest.fixture(scope="module")
def case():
    env = make_env(64)
    items = build_split(SplitSpec("seen", 4, 1_000_000))
    item = next(it for it in items if item_family(it) == "pick_place")
    videos = {kind: render_probe(env, kind, int(item.seed), None) for kind in ("expert", "frozen")}
    assert videos["expert"].record["object"] == item.proposal.metadata["object"]
    yield env, item, ReplayVideoModel(videos["frozen"].frames, videos["expert"].frames)
    env.close()


@pytest.mark.skipif(not IDM.is_dir(), reason="the committed IDM checkpoints/idm_sim is missing")
def test_the_judge_picks_the_video_the_arm_can_do(case) -> None:
    env, item, video_model = case
    idm = InverseDynamicsPolicy.from_pretrained(IDM, device="cpu")
    critic = JudgeCritic(ExecutionAwareJudge())
    one = ClosedLoopConfig(max_replans=0, paraphrase=False)
    alone = run_stack(env, item, "executor_distilled", video_model, idm, one, SEED, critic)
    assert not alone.success  # the frozen video: the arm stays home
    assert alone.chosen == []  # a single candidate is never judged
    two = ClosedLoopConfig(max_replans=0, paraphrase=False, num_candidates=2)
    video_model.seeds.clear()
    # no critic given: run_stack makes the config's candidate_judge (execution_aware)
    picked = run_stack(env, item, "executor_distilled", video_model, idm, two, SEED)
    assert video_model.seeds == [SEED * 101, SEED * 101 + CANDIDATE_SEED_STRIDE]
    assert picked.chosen == [1]
    assert picked.accepted == [1]  # the expert's video passes, the frozen one does not
    assert picked.success, picked.message
    np.testing.assert_array_equal(picked.imagined[0], video_model.expert)


def test_judge_critic_reads_the_prompt_and_names_what_it_cannot_read(case) -> None:
    _, item, video_model = case
    critic = JudgeCritic(ExecutionAwareJudge())
    good = critic.critique(video_model.expert, item.prompt)
    frozen = critic.critique(video_model.frozen, item.prompt)
    assert isinstance(good, Critique)
    assert good.accepted
    assert not frozen.accepted
    assert good.score > frozen.score
    with pytest.raises(ValueError, match="dance a jig"):
        critic.critique(video_model.expert, "dance a jig")
    with pytest.raises(ValueError, match="no judge"):
        JudgeCritic(object())


def test_candidate_judge_is_checked_and_one_candidate_needs_no_critic() -> None:
    assert ClosedLoopConfig().num_candidates == 1
    with pytest.raises(ValueError, match=r"candidate_judge must be one of .*got 'executed'"):
        ClosedLoopConfig(candidate_judge="executed")  # runs a simulator: not at run time
    assert make_critic("execution_aware", 1) is None
    for judge in set(CRITIC_JUDGES) - {"learned"}:
        assert isinstance(make_critic(judge, 2), JudgeCritic)
    with pytest.raises(ValueError, match="'learned' needs critic_path"):
        ClosedLoopConfig(candidate_judge="learned", num_candidates=2)
    with pytest.raises(ValueError, match=r"critic_path 'x' is only read by .*'programmatic'"):
        make_critic("programmatic", 2, "x")


def test_the_critics_benchmark_scores_picks_against_candidate_0_and_the_oracle(
    load_script: Callable[[str], ModuleType],
) -> None:
    bench = load_script("benchmarks/bench_candidate_critics.py")

    def candidate(executed: bool, ea: float, accepted: bool = False) -> dict:
        return {
            "executed": executed,
            "ea_success": accepted,
            "ea_score": ea,
            "ea_task": ea,
            "ea_agent": 1 - ea,
            "ea_consistency": ea,
            "prog_success": False,
            "prog_score": 0.5,
        }

    rows = [  # item a: the judge ranks the executing video first; item b: last
        {
            "item_id": "a",
            "family": "push",
            "candidates": [candidate(False, 0.2), candidate(True, 0.9)],
        },
        {
            "item_id": "b",
            "family": "stack",
            "candidates": [candidate(True, 0.1), candidate(False, 0.8, True)],
        },
    ]
    summary = bench.summarize(rows, 2)
    picked = summary["picked"]["best_of_2"]
    assert picked["candidate_0"]["executed"] == 0.5
    assert picked["oracle"]["executed"] == 1.0
    assert picked["execution_aware"]["executed"] == 0.5  # right on a, wrong on b
    assert picked["agent_score"]["executed"] == 0.5
    assert picked["programmatic"]["executed"] == 0.5  # ties: candidate 0
    assert summary["auc_executed"]["execution_aware"] == 0.5
    assert summary["precision_of_accepted"]["execution_aware"] == {
        "accepted": 1,
        "of": 4,
        "executed": 0.0,
    }
    assert summary["execution_rate_per_family"] == {"push": 0.5, "stack": 0.5}
