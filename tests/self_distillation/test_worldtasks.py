"""The WorldTasks-style sim benchmark: its splits, held-out compositions kept out of
training, its statistics, and one tiny end-to-end run on the committed checkpoints."""

from __future__ import annotations

import json
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest

from executor_sim.scene import CUBE_COLORS
from executor_sim.tasks import (
    NOVEL_COMPOSITIONS,
    TASK_FAMILIES,
    SceneInfo,
    is_novel_composition,
    make_task,
)
from self_distillation.propose import PRESETS as PROPOSE_PRESETS
from self_distillation.propose import run_propose
from self_distillation.task_items import SimSceneTaskSource, load_items, render_sim_scenes
from self_distillation.worldtasks import (
    CONDITIONS,
    PRESETS,
    WorldTasksModels,
    agreement,
    paired_table,
    parse_pair,
    run_worldtasks,
    summarize_condition,
)
from self_distillation.worldtasks_splits import SPLIT_FIRST_SEEDS, SplitSpec, build_split

REPO = Path(__file__).resolve().parents[2]


def _all_tasks():
    poses = {c: (0.2, 0.0, 0.015, 0.0) for c in CUBE_COLORS}
    scene = SceneInfo(CUBE_COLORS, poses, (0.2, 0.1), (0.25, -0.1))
    for family in TASK_FAMILIES:
        if family == "stack":
            for obj, target in permutations(CUBE_COLORS, 2):
                yield make_task(family, obj, target, scene)
        else:
            for obj in CUBE_COLORS:
                yield make_task(family, obj, "", scene)


def test_novel_compositions_combine_parts_that_all_occur_in_training():
    tasks = list(_all_tasks())
    novel = [t for t in tasks if is_novel_composition(t.family, t.obj, t.target)]
    assert len(novel) == len(NOVEL_COMPOSITIONS) == 4
    seen = [t for t in tasks if not is_novel_composition(t.family, t.obj, t.target)]
    for t in novel:  # the cube, the family and the target each occur; only the combination is new
        assert any(s.obj == t.obj for s in seen)
        assert any(s.family == t.family for s in seen)
        assert any(s.target == t.target for s in seen)
        if t.family == "stack":  # both cubes of the pair occur in stacks, in other pairs
            assert any(s.family == "stack" and s.obj == t.obj for s in seen)
            assert any(s.family == "stack" and s.target == t.target for s in seen)


def test_novel_phrasings_never_occur_as_training_text():
    tasks = list(_all_tasks())
    training_text = {t.prompt for t in tasks} | {t.solution for t in tasks}
    for task in tasks:
        assert not set(task.paraphrases) & training_text, task.prompt


@pytest.mark.parametrize("split", ["seen", "novel_composition", "novel_phrasing"])
def test_split_items(split):
    items = build_split(SplitSpec(split, 6, SPLIT_FIRST_SEEDS[split]))
    assert len(items) == 6
    assert len({it.item_id for it in items}) == 6
    for it in items:
        meta = it.proposal.metadata
        novel = is_novel_composition(meta["task_family"], meta["object"], meta.get("target", ""))
        assert novel == (split == "novel_composition")
        assert it.seed >= SPLIT_FIRST_SEEDS[split]
        if split == "novel_phrasing":
            assert it.prompt in meta["paraphrases"]
        else:
            assert it.prompt not in meta["paraphrases"]
    again = build_split(SplitSpec(split, 6, SPLIT_FIRST_SEEDS[split]))
    assert [it.prompt for it in again] == [it.prompt for it in items]
    assert np.array_equal(again[0].image_rgb, items[0].image_rgb)


def test_split_rejects_training_seeds():
    with pytest.raises(ValueError, match="first_seed >= 1000000"):
        SplitSpec("seen", 4, 0)


def test_training_proposals_hold_out_the_novel_compositions(tmp_path):
    scenes = render_sim_scenes(range(40), 32)
    for hold_out in (False, True):
        source = SimSceneTaskSource(hold_out_novel=hold_out)
        found = {
            (t["task_family"], t["object"], t.get("target") or "")
            for s in scenes
            for t in source.tasks_for_scene(s.metadata)
        }
        novel = {c for c in found if is_novel_composition(*c)}
        assert bool(novel) != hold_out
    cfg = PROPOSE_PRESETS["debug"]
    stats = run_propose(
        type(cfg)(**{**cfg.__dict__, "output_dir": tmp_path / "p", "num_sim_scenes": 24})
    )
    items = load_items(tmp_path / "p")
    assert stats["items"] == len(items) > 0
    for it in items:
        meta = it.proposal.metadata
        assert not is_novel_composition(meta["task_family"], meta["object"], meta.get("target", ""))


def _row(item_id, family, judged, executed, closed, scores=(1.0, 1.0, 1.0)):
    task, agent, consistency = scores
    return {
        "item_id": item_id,
        "family": family,
        "task": task,
        "agent": agent,
        "consistency": consistency,
        "judged_success": judged,
        "executed_success": executed,
        "closed_loop_success": closed,
        "closed_loop_steps": 10,
    }


def test_summary_agreement_and_paired_differences():
    a = [
        _row("i0", "push", True, True, True),
        _row("i1", "push", True, False, True),
        _row("i2", "stack", False, False, False, (0.0, 0.5, 1.0)),
        _row("i3", "stack", False, True, True),
    ]
    s = summarize_condition(a)
    assert s["n"] == 4
    assert s["judged_success"] == 0.5
    assert s["executed_success"] == 0.5
    assert s["closed_loop_success"] == 0.75
    by_family = {f: v["closed_loop_success"] for f, v in s["by_family"].items()}
    assert by_family == {"push": 1.0, "stack": 0.5}
    stack = s["by_family"]["stack"]
    assert stack["n"] == 2
    assert stack["task"] == pytest.approx(0.5)
    assert stack["judged_success"] == 0.0
    assert stack["executed_success"] == 0.5
    assert stack["closed_loop_success"] == 0.5
    assert s["by_family"]["push"]["judged_success"] == 1.0
    assert s["task"] == pytest.approx(0.75)
    lo, hi = s["ci95"]["closed_loop_success"]
    assert lo < 0.75 < hi
    agr = agreement(a)
    assert agr["agreement"] == 0.5  # i0 and i2 agree
    assert agr["precision"] == 0.5
    assert agr["recall"] == 0.5


def test_paired_table_on_known_conditions():
    a = [_row(f"i{k}", "push", True, True, k < 3) for k in range(4)]
    b = [_row(f"i{k}", "push", False, False, False) for k in range(4)]
    records = {"seen": {"executor_rl": a, "executor_distilled": b}}
    table = paired_table(records, ("executor_rl - executor_distilled",))
    cell = table["executor_rl - executor_distilled"]["seen"]
    assert cell["closed_loop_success"]["diff"] == pytest.approx(0.75)
    assert cell["executed_success"]["diff"] == 1.0
    assert cell["executed_success"]["ci95"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="'A - B'"):
        parse_pair("executor_rl minus expert")


def test_every_model_condition_names_a_committed_checkpoint():
    """Each condition's model field exists, and the default points at a committed folder
    (the bringup's Executor, executor_anchor, among them)."""
    models = WorldTasksModels()
    assert parse_pair("executor_anchor - executor_distilled") == (
        "executor_anchor",
        "executor_distilled",
    )
    for condition, spec in CONDITIONS.items():
        if spec is None:
            continue
        folder = REPO / getattr(models, spec[0])
        assert (folder / "model_index.json").is_file(), (condition, folder)


def test_tiny_benchmark_run_writes_the_contract_and_resumes(tmp_path):
    cfg = PRESETS["debug"]
    cfg = type(cfg)(
        **{
            **cfg.__dict__,
            "output_dir": tmp_path / "wt",
            "splits": ("seen", "novel_composition"),
            "items_per_split": 1,
        }
    )
    results = run_worldtasks(cfg)
    out = tmp_path / "wt"
    saved = json.loads((out / "benchmark.json").read_text())
    assert set(saved) >= {"splits", "paired", "judge_probes", "command"}
    for split in ("seen", "novel_composition"):
        for condition in ("expert", "executor_distilled"):
            entry = saved["splits"][split][condition]
            for key in (
                "n",
                "task",
                "agent",
                "consistency",
                "judged_success",
                "executed_success",
                "closed_loop_success",
                "by_family",
                "ci95",
            ):
                assert key in entry, (split, condition, key)
            assert entry["n"] == 1
    assert saved["splits"]["seen"]["expert"]["closed_loop_success"] == 1.0
    assert "expert - executor_distilled" in saved["paired"]
    assert "| executor_distilled | " in (out / "report.md").read_text()
    assert "Per family:" in (out / "report.md").read_text()
    assert (out / "benchmark.png").is_file()
    assert list((out / "strips").rglob("*.png"))
    # a rerun reuses the per-(split, condition) records: same figures
    again = run_worldtasks(cfg)
    assert again["splits"] == results["splits"]
    # records_only summarises what is there and lists the rest as missing, running nothing
    listed = run_worldtasks(
        type(cfg)(
            **{
                **cfg.__dict__,
                "records_only": True,
                "conditions": ("expert", "executor_distilled", "demonstrator_prompt"),
            }
        )
    )
    missing = ["seen/demonstrator_prompt", "novel_composition/demonstrator_prompt"]
    assert listed["missing"] == missing
    assert listed["splits"] == results["splits"]
