"""The DreamGen-style evaluation: a policy through the goal runner over the simulator, the
results' schema and the paired differences."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from self_distillation import dreamgen as dg


def _episode(split: str, condition: str, item: int, success: bool, family: str = "push") -> dict:
    return {
        "split": split,
        "condition": condition,
        "item_id": f"i{item}",
        "family": family,
        "success": success,
    }


def test_summary_has_the_results_schema_and_paired_differences() -> None:
    cfg = replace(dg.PRESETS["debug"], splits=("held_out",))
    eps = [_episode("held_out", "a", i, i < 2) for i in range(10)]
    eps += [_episode("held_out", "b", i, i < 6, "stack" if i % 2 else "push") for i in range(10)]
    out = dg.summarise(eps, cfg)
    assert set(out) >= {"splits", "paired", "command"}
    row = out["splits"]["held_out"]["b"]
    assert row["n"] == 10
    assert row["success"] == pytest.approx(0.6)
    assert 0 < row["ci95"][0] < 0.6 < row["ci95"][1] < 1
    assert row["by_family"]["stack"]["n"] == 5
    (paired,) = out["paired"].values()
    assert paired["a"] == "b"
    assert paired["b"] == "a"
    assert paired["difference"] == pytest.approx(0.4)
    assert paired["ci95"][0] > 0


def test_split_seeds_are_held_out_and_validation_is_disjoint() -> None:
    report = dg.split_items(replace(dg.PRESETS["debug"], num_episodes=1), "novel_behaviour")
    val = dg.split_items(
        replace(dg.PRESETS["debug"], num_episodes=1, seed_set="validation"), "novel_behaviour"
    )
    assert report[0].seed >= 1_000_000
    assert val[0].seed >= dg._SPLIT_SOURCE["novel_behaviour"][1] + dg.VALIDATION_OFFSET
    assert report[0].proposal.metadata["task_family"] in ("pick_place", "push", "stack")
    env_cfg = dg.split_env_config(dg.PRESETS["debug"], "novel_environment")
    assert env_cfg.camera_jitter_m == dg.PRESETS["debug"].camera_jitter_m > 0
    assert dg.split_env_config(dg.PRESETS["debug"], "held_out").camera_jitter_m == 0


def test_bad_conditions_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct"):
        replace(dg.PRESETS["debug"], conditions=("a=x", "a=y"))
    with pytest.raises(ValueError, match="name=path"):
        replace(dg.PRESETS["debug"], conditions=("just_a_path",))
    with pytest.raises(ValueError, match="n_action_steps must be 0 or 1"):
        replace(dg.PRESETS["debug"], temporal_ensemble_coeff=0.01, n_action_steps=4)


def test_the_evaluation_chunking_reaches_every_policy(tmp_path: Path) -> None:
    """n_action_steps / temporal_ensemble_coeff are the same PolicyIOConfig for every
    condition: the loaded policies run chunks of that length."""
    from visuomotor_policy.testing import save_tiny_random_act

    folder = save_tiny_random_act(tmp_path / "act")  # its own n_action_steps: 4
    two = dg.load_policy(folder, replace(dg.PRESETS["debug"], n_action_steps=2).policy_io())
    assert two.n_action_steps == two.policy.config.n_action_steps == 2
    cfg = replace(dg.PRESETS["debug"], temporal_ensemble_coeff=0.01)
    ensembled = dg.load_policy(folder, cfg.policy_io())
    assert ensembled.n_action_steps == 1
    assert ensembled.policy.config.temporal_ensemble_coeff == 0.01


def test_a_lerobot_policy_runs_through_the_goal_runner(tmp_path: Path) -> None:
    from visuomotor_policy.testing import save_tiny_random_act

    folder = save_tiny_random_act(tmp_path / "act")
    cfg = replace(
        dg.PRESETS["debug"],
        conditions=(f"a={folder}", f"b={folder}"),
        splits=("held_out",),
        num_episodes=1,
        max_steps=6,
        output=tmp_path / "results.json",
        report_dir=tmp_path / "report",
    )
    results = dg.evaluate(cfg)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["splits"]["held_out"]["a"]["n"] == 1
    assert results["paired"]["held_out: b - a"]["difference"] == 0.0  # same policy, same item
    (episode, _) = [json.loads(x) for x in (tmp_path / "report" / "episodes.jsonl").open()]
    assert 0 < episode["steps"] <= 6  # the step budget is the goal timeout
    assert "timeout" in episode["message"] or episode["success"]
    assert (tmp_path / "report" / "success.png").is_file()
    assert len(list((tmp_path / "report" / "videos").glob("*.mp4"))) == 2


def test_merge_summarises_runs_of_separate_splits(tmp_path: Path) -> None:
    for split in ("held_out", "novel_behaviour"):
        eps = [_episode(split, c, i, c == "b") for c in ("a", "b") for i in range(4)]
        dg.write_jsonl(tmp_path / split / "episodes.jsonl", eps)
    cfg = replace(
        dg.PRESETS["debug"],
        splits=("held_out", "novel_behaviour"),
        merge_from=(str(tmp_path / "held_out"), str(tmp_path / "novel_behaviour")),
        output=tmp_path / "merged.json",
        report_dir=tmp_path / "merged",
    )
    out = dg.merge(cfg)
    assert out["splits"]["novel_behaviour"]["b"]["success"] == 1.0
    assert out["paired"]["held_out: b - a"]["difference"] == 1.0
    assert json.loads((tmp_path / "merged.json").read_text())["splits"] == out["splits"]
    assert "held_out" in (tmp_path / "merged" / "report.md").read_text()


def test_merge_counts_a_repeated_baseline_once_and_refuses_disagreement(tmp_path: Path) -> None:
    """Two runs that each evaluated the baseline ``a`` beside a candidate: ``a``'s identical
    records count once; records that disagree name the condition and the item."""
    dg.write_jsonl(
        tmp_path / "r1" / "episodes.jsonl",
        [_episode("held_out", c, i, c != "a" or i == 0) for c in ("a", "b") for i in range(4)],
    )
    dg.write_jsonl(
        tmp_path / "r2" / "episodes.jsonl",
        [_episode("held_out", c, i, c == "c" or i == 0) for c in ("a", "c") for i in range(4)],
    )
    cfg = replace(
        dg.PRESETS["debug"],
        conditions=("a=x", "b=y", "c=z"),
        splits=("held_out",),
        merge_from=(str(tmp_path / "r1"), str(tmp_path / "r2")),
        output=tmp_path / "merged.json",
        report_dir=tmp_path / "merged",
    )
    out = dg.merge(cfg)
    assert out["splits"]["held_out"]["a"]["n"] == 4
    assert out["splits"]["held_out"]["a"]["successes"] == 1
    assert out["splits"]["held_out"]["c"]["successes"] == 4
    lines = (tmp_path / "merged" / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 12
    dg.write_jsonl(tmp_path / "r2" / "episodes.jsonl", [_episode("held_out", "a", 1, True)])
    with pytest.raises(ValueError, match="condition 'a' on held_out item 'i1'"):
        dg.merge(cfg)
    assert json.loads((tmp_path / "merged.json").read_text())["splits"] == out["splits"]


def test_first_item_evaluates_fresh_items_of_the_same_range() -> None:
    """A replication skips the report's items: item k of the longer list, never a re-draw."""
    cfg = replace(dg.PRESETS["debug"], num_episodes=3)
    three = dg.split_items(cfg, "held_out")
    fresh = dg.split_items(replace(cfg, first_item=2, num_episodes=1), "held_out")
    assert [i.item_id for i in fresh] == [three[2].item_id]
    assert fresh[0].seed == three[2].seed > three[1].seed
    with pytest.raises(ValueError, match="first_item must be >= 0, got -1"):
        replace(cfg, first_item=-1)
    with pytest.raises(ValueError, match=f"{dg.MAX_EPISODES} \\+ 1"):
        replace(cfg, first_item=dg.MAX_EPISODES, num_episodes=1)


def test_seed_sets_never_share_a_scene() -> None:
    """Report, validation and test ranges (<= 50 seeds per item) are pairwise disjoint."""
    ranges = sorted(
        (
            dg.first_seed(split, seed_set),
            dg.first_seed(split, seed_set) + 50 * dg.max_episodes(seed_set),
        )
        for split in dg.SPLITS
        for seed_set in dg.SEED_SETS
    )
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end <= start
    assert dg.max_episodes("test") == 800


def test_test_seed_set_draws_its_own_scenes() -> None:
    cfg = replace(dg.PRESETS["debug"], num_episodes=2)
    test_items = dg.split_items(replace(cfg, seed_set="test"), "held_out")
    report_items = dg.split_items(cfg, "held_out")
    assert all(1_600_000 <= (i.seed or 0) < 1_640_000 for i in test_items)
    assert not {i.seed for i in test_items} & {i.seed for i in report_items}
    replace(cfg, seed_set="test", first_item=798, num_episodes=2)  # the last two items
    with pytest.raises(ValueError, match=r"<= 800 for seed_set 'test'.*799 \+ 2"):
        replace(cfg, seed_set="test", first_item=799, num_episodes=2)
    with pytest.raises(ValueError, match=r"seed_set must be one of .* got 'final'"):
        replace(cfg, seed_set="final")
