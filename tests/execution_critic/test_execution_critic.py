"""The execution critic: config, model round trip, input contract, run-time critic, metrics,
and the trainer (debug preset for 2 steps, then resumed; and that it learns a motion cue)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from execution_critic.configuration_critic import ExecutionCriticConfig
from execution_critic.modeling_critic import ExecutionCritic
from execution_critic.processing_critic import (
    LabelledVideos,
    LearnedCritic,
    load_labelled_videos,
    prepare_videos,
)
from execution_critic.train_critic import (
    PRESETS,
    pick_rates,
    rank_auc,
    split_items,
    train,
)
from executor_core.atomic_io import write_npz_atomic
from executor_core.policy import best_candidate
from self_distillation.executed_success import SimStart, video_starts
from self_distillation.judges.critic import make_critic
from self_distillation.worldtasks_splits import SplitSpec, build_split

TINY = ExecutionCriticConfig(image_size_px=32, num_frames=6, conv_channels=(8, 16))


def synthetic_videos(items: int, per_item: int, seed: int) -> dict[str, np.ndarray]:
    """Per item, videos of a white square crossing the frame: those that 'execute' move it
    smoothly; the others teleport it halfway (what the Executor's failures look like)."""
    rng = np.random.default_rng(seed)
    frames, side = 8, 32
    videos = np.zeros((items * per_item, frames, side, side, 3), np.uint8)
    executed = np.zeros(items * per_item, bool)
    for n in range(items * per_item):
        smooth = bool(rng.random() < 0.5)
        y = int(rng.integers(4, side - 8))
        start, end = int(rng.integers(2, 8)), int(rng.integers(20, 26))
        for t in range(frames):
            if smooth:
                x = round(start + (end - start) * t / (frames - 1))
            else:
                x = start if t < frames // 2 else end
            videos[n, t, y : y + 4, x : x + 4] = 255
        executed[n] = smooth
    return {
        "videos": videos,
        "executed": executed,
        "item_index": np.repeat(np.arange(items), per_item),
        "family": np.array(["push"] * (items * per_item)),
    }


def test_config_names_bad_values() -> None:
    with pytest.raises(ValueError, match="num_frames must be >= 2, got 1"):
        ExecutionCriticConfig(num_frames=1)
    with pytest.raises(ValueError, match="image_size_px 40 must be divisible"):
        ExecutionCriticConfig(image_size_px=40)
    with pytest.raises(ValueError, match=r"accept_threshold must be in \(0, 1\), got 1.5"):
        ExecutionCriticConfig(accept_threshold=1.5)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"listwise_weight.*{bad}"):
            replace(PRESETS["debug"], listwise_weight=bad)


def test_model_round_trip_and_pickles_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ExecutionCritic(TINY).eval()
    x = torch.rand(3, 6, 3, 32, 32) * 2 - 1
    model.save_pretrained(tmp_path / "critic")
    loaded = ExecutionCritic.from_pretrained(tmp_path / "critic", accept_threshold=0.3)
    assert loaded.config.accept_threshold == 0.3
    torch.testing.assert_close(loaded(x), model(x))
    assert model(x).shape == (3,)
    (tmp_path / "critic" / "extra.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match="pickle"):
        ExecutionCritic.from_pretrained(tmp_path / "critic")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ExecutionCritic.from_pretrained(tmp_path / "nowhere")


def test_prepare_videos_resamples_resizes_and_checks() -> None:
    videos = np.zeros((2, 12, 64, 64, 3), np.uint8)
    videos[:, -1] = 255
    x = prepare_videos(videos, TINY)
    assert x.shape == (2, 6, 3, 32, 32)
    assert float(x[:, 0].max()) == -1.0
    assert float(x[:, -1].min()) == 1.0
    with pytest.raises(ValueError, match=r"\(N, T, H, W, 3\) uint8 videos, got \(12, 64, 64, 3\)"):
        prepare_videos(videos[0], TINY)
    with pytest.raises(ValueError, match="needs >= 2 frames, got 1"):
        prepare_videos(videos[:, :1], TINY)


def test_learned_critic_scores_a_probability_and_accepts_over_the_threshold() -> None:
    torch.manual_seed(0)
    model = ExecutionCritic(TINY)
    video = synthetic_videos(1, 1, 0)["videos"][0]
    critique = LearnedCritic(model).critique(video, "push the red cube left")
    assert 0.0 < critique.score < 1.0
    assert critique.accepted == (critique.score >= TINY.accept_threshold)
    with pytest.raises(ValueError, match="non-empty string, got ''"):
        LearnedCritic(model).critique(video, "")


def test_metrics_on_hand_made_cases() -> None:
    assert rank_auc(np.array([0.9, 0.1, 0.5]), np.array([True, False, False])) == 1.0
    assert rank_auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5
    assert rank_auc(np.array([0.2]), np.array([True])) is None
    data = LabelledVideos(
        np.zeros((4, 2, 8, 8, 3), np.uint8),
        np.array([False, True, True, False]),
        np.array([0, 0, 1, 1]),
        np.array(["push"] * 4),
    )
    # item 0: the critic picks the executing video; item 1: the one that does not
    rates = pick_rates(np.array([0.1, 0.9, 0.2, 0.8]), data)
    assert rates == {"items": 2, "picked": 0.5, "candidate_0": 0.5, "oracle": 1.0}
    assert pick_rates(np.array([0.1, 0.9, 0.2, 0.8]), data, k=1)["oracle"] == 0.5
    train_mask, tune_mask = split_items(data, 0.5, 0)
    assert (train_mask ^ tune_mask).all()
    assert len(set(data.item_index[tune_mask])) == 1  # whole items on one side


def test_labelled_videos_are_checked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        load_labelled_videos(tmp_path / "missing.npz")
    write_npz_atomic(tmp_path / "bad.npz", {"videos": np.zeros((1, 2, 8, 8, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"lacks \['executed', 'item_index', 'family'\]"):
        load_labelled_videos(tmp_path / "bad.npz")


def test_trainer_debug_preset_runs_two_steps_then_resumes(tmp_path: Path) -> None:
    data = tmp_path / "videos.npz"
    write_npz_atomic(data, synthetic_videos(6, 2, 0))
    cfg = PRESETS["debug"]
    out = tmp_path / "run"
    final = train(replace(cfg, data_path=data, output_dir=out))
    assert (final / "model.safetensors").is_file()
    assert (final / "train_config.json").is_file()
    assert json.loads((out / "eval.json").read_text())["tune"]["videos"] > 0
    longer = replace(cfg, data_path=data, output_dir=out, steps=4)
    train(longer)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # resumed at 2, not restarted
    assert (out / "checkpoints" / "step_000004").is_dir()


def test_trainer_refuses_a_tune_split_it_cannot_choose_on_before_training(
    tmp_path: Path,
) -> None:
    """Without an item with both outcomes on the tune split, within_item_auc is never
    defined: the run is refused at its start, naming why, and writes nothing."""
    videos = synthetic_videos(6, 2, 0)
    videos["executed"] = videos["item_index"] % 2 == 0  # each item all one outcome
    data = tmp_path / "videos.npz"
    write_npz_atomic(data, videos)
    cfg = replace(PRESETS["debug"], data_path=data, output_dir=tmp_path / "run")
    with pytest.raises(ValueError, match=r"select_by='within_item_auc' is undefined.*item"):
        train(cfg)
    assert not (tmp_path / "run").exists()
    videos["executed"][:] = True
    write_npz_atomic(data, videos)
    with pytest.raises(
        ValueError, match=r"'auc' is undefined on the tune split \((\d+) videos.*, \1 execute\)"
    ):
        train(replace(cfg, select_by="auc"))
    assert not (tmp_path / "run").exists()


def test_trainer_learns_to_tell_smooth_motion_from_a_jump(tmp_path: Path) -> None:
    data = tmp_path / "videos.npz"
    write_npz_atomic(data, synthetic_videos(40, 4, 1))
    run = replace(
        PRESETS["debug"],
        data_path=data,
        output_dir=tmp_path / "run",
        model=TINY,
        steps=150,
        items_per_batch=4,
        learning_rate=3e-3,
        eval_every=50,
        save_every=150,
        shift_px=0,
        tune_fraction=0.25,
    )
    final = train(run)
    tune = json.loads((tmp_path / "run" / "eval.json").read_text())["tune"]
    assert tune["auc"] > 0.9, tune
    # as the goal runner's critic (candidate_judge "learned"): the smooth video wins
    fresh = synthetic_videos(2, 2, 7)
    smooth = fresh["videos"][fresh["executed"]][0]
    jump = fresh["videos"][~fresh["executed"]][0]
    critic = make_critic("learned", 2, final)
    assert isinstance(critic, LearnedCritic)
    critiques = [critic.critique(v, "push the cube") for v in (jump, smooth)]
    assert best_candidate(critiques) == 1


def test_offline_benchmark_pairs_the_pick_with_candidate_0(
    load_script: Callable[[str], ModuleType],
) -> None:
    bench = load_script("benchmarks/bench_execution_critic.py")
    data = LabelledVideos(
        np.zeros((6, 2, 8, 8, 3), np.uint8),
        np.array([False, True, False, True, False, False]),
        np.array([0, 0, 1, 1, 2, 2]),
        np.array(["push", "push", "pick_place", "pick_place", "stack", "stack"]),
    )
    scores = np.array([0.1, 0.9, 0.2, 0.8, 0.5, 0.4])  # right on items 0 and 1
    summary = bench.summarize(scores, data, (1, 2))
    assert summary["auc"] == 1.0
    assert summary["auc_per_family"]["stack"] is None  # nothing executes there
    assert summary["best_of_1"]["picked"] == summary["best_of_1"]["candidate_0"] == 0.0
    two = summary["best_of_2"]
    assert (two["picked"], two["candidate_0"], two["oracle"]) == (2 / 3, 0.0, 2 / 3)
    assert two["picked_minus_candidate_0"][0] == pytest.approx(200 / 3)


def test_critics_benchmark_saves_every_candidate_with_its_label(
    load_script: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    bench = load_script("benchmarks/bench_candidate_critics.py")
    rows = [
        {
            "item_id": f"i{i}",
            "family": "push",
            "prompt": "push the red cube left",
            "candidates": [{"executed": bool(j == i)} for j in range(2)],
            "videos": np.full((2, 3, 8, 8, 3), i, np.uint8),
        }
        for i in range(2)
    ]
    bench.save_videos(tmp_path / "v.npz", rows)
    data = load_labelled_videos(tmp_path / "v.npz")
    assert data.videos.shape == (4, 3, 8, 8, 3)
    assert data.executed.tolist() == [True, False, False, True]
    assert data.item_index.tolist() == [0, 0, 1, 1]
    assert int(data.videos[2].max()) == 1  # item 1's first candidate
    assert data.item_id is not None
    assert data.item_id.tolist() == ["i0", "i0", "i1", "i1"]


def test_stability_benchmark_counts_flips_per_family(
    load_script: Callable[[str], ModuleType],
) -> None:
    bench = load_script("benchmarks/bench_execution_stability.py")
    executed = np.array([True, True, True, False, False, False, False])
    chosen = bench.balanced_sample(executed, 4, 0)
    assert executed[chosen].sum() == 2
    assert len(chosen) == 4
    video = np.full((2, 4, 4, 3), 254, np.uint8)
    noisy = bench.perturbed(video, 3.0, np.random.default_rng(0))
    assert noisy.dtype == np.uint8
    assert int(noisy.max()) == 255  # held in range
    assert (noisy != video).any()
    original = np.array([True, True, False, False])
    again = original.copy()
    under_noise = np.array([[True, False], [True, True], [False, False], [True, False]])
    family = np.array(["push", "push", "pick_place", "pick_place"])
    summary = bench.summarize(original, again, under_noise, family)
    assert summary["repeats_identically_without_noise"] == 1.0
    assert summary["still_executes_under_noise"] == 0.75
    assert summary["failing_executes_under_noise"] == 0.25
    assert summary["flip_rate"] == 0.25
    assert summary["per_family"]["push"]["flip_rate"] == 0.25
    assert summary["per_family"]["pick_place"]["failing_executes_under_noise"] == 0.25


def test_failure_phases_are_classified_and_counted_per_family(
    load_script: Callable[[str], ModuleType],
) -> None:
    bench = load_script("benchmarks/bench_failure_phases.py")
    assert bench.phase(True, True, 0.1) == "executed"
    assert bench.phase(False, False, 0.0) == "never_touched"
    assert bench.phase(False, True, 0.005) == "touched_not_lifted"
    assert bench.phase(False, True, 0.05) == "lifted_not_placed"
    rows = [
        {"family": "pick_place", "phase": "executed", "success": True, "label": True},
        {"family": "pick_place", "phase": "touched_not_lifted", "success": False, "label": True},
        {"family": "push", "phase": "never_touched", "success": False, "label": False},
    ]
    summary = bench.summarize(rows)
    assert summary["pick_place"]["touched_not_lifted"] == 1
    assert summary["pick_place"]["labels_reproduced"] == 0.5
    assert summary["push"] == {
        "videos": 1,
        "executed": 0,
        "never_touched": 1,
        "touched_not_lifted": 0,
        "lifted_not_placed": 0,
        "labels_reproduced": 1.0,
    }


def test_video_starts_come_from_the_items_and_missing_ids_are_named() -> None:
    items = build_split(SplitSpec("seen", 2, 1_000_000))
    ids = np.array([items[1].item_id, items[0].item_id, items[1].item_id])
    starts = video_starts(ids, items)
    assert starts == [SimStart.from_item(items[i]) for i in (1, 0, 1)]
    with pytest.raises(ValueError, match=r"items \['nowhere-0'\] are not among"):
        video_starts(np.array(["nowhere-0"]), items)
    with pytest.raises(ValueError, match="carry no item_id"):
        video_starts(None, items)


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    """A run killed after its step-2 checkpoint and rerun ends at the weights of the run
    that never stopped (the batches, augmentations and dropout: functions of seed, step)."""
    import shutil

    from safetensors.torch import load_file

    data = tmp_path / "videos.npz"
    write_npz_atomic(data, synthetic_videos(6, 2, 0))
    cfg = replace(PRESETS["debug"], data_path=data, steps=4, save_every=2, eval_every=2)
    whole = tmp_path / "whole"
    train(replace(cfg, output_dir=whole))
    killed = tmp_path / "killed"
    shutil.copytree(whole, killed)
    shutil.rmtree(killed / "checkpoints" / "step_000004")
    train(replace(cfg, output_dir=killed))
    weights = Path("checkpoints") / "step_000004" / "model" / "model.safetensors"
    expected, got = load_file(str(whole / weights)), load_file(str(killed / weights))
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0, msg=key)
    # the killed run's evaluation past its checkpoint is logged once, not twice
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 4]
