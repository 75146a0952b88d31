"""Neural trajectories: IDM labelling, the dataset's features and metadata, resuming."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from executor_core.atomic_io import claim_cache
from executor_sim.generate import IMAGE_KEY, dataset_features
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from self_distillation import neural_trajectories as nt

IDM = Path(__file__).resolve().parents[2] / "checkpoints" / "idm_sim"


def test_labels_hold_frames_and_states_follow_the_pseudo_actions() -> None:
    idm = InverseDynamicsPolicy.from_pretrained(IDM)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, size=(4, 64, 64, 3), dtype=np.uint8)
    start = np.array([0.0, -1.0, 1.0, 0.5, 0.0, 0.2], np.float32)
    images, states, actions = nt.label_video(video, idm, start, frame_stride=4)
    assert images.shape == (13, 64, 64, 3)
    assert states.shape == actions.shape == (13, 6)
    # frame k is held for 4 steps, the last shown once
    assert np.array_equal(images[0], video[0])
    assert np.array_equal(images[3], video[0])
    assert np.array_equal(images[4], video[1])
    assert np.array_equal(images[12], video[3])
    # state 0 = the start state, state t = action t-1; the last action repeats
    np.testing.assert_array_equal(states[0], start)
    np.testing.assert_array_equal(states[1:], actions[:-1])
    np.testing.assert_array_equal(actions[-1], actions[-2])
    # the actions are the IDM's own open-loop chain from the start state
    chained = np.concatenate([c.joint_positions_rad for c in idm.predict(video, start)])
    np.testing.assert_allclose(actions[:-1], chained, atol=1e-6)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"jitter_fraction": 2.0}, "jitter_fraction"),
        ({"first_seed": 999_999}, "held-out"),
        ({"generators": ("dreamer",)}, "generators"),
        ({"expert_max_frames": 0}, "expert_max_frames"),
        ({"shard_index": 2, "num_shards": 2}, "shard_index"),
    ],
)
def test_bad_config_names_the_value(override: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        replace(nt.PRESETS["debug"], **override)


def test_jittered_scenes_are_fixed_per_seed() -> None:
    cfg = replace(nt.PRESETS["debug"], camera_jitter_m=0.03, jitter_fraction=0.5)
    picks = [nt.is_jittered(cfg, s) for s in range(200)]
    assert picks == [nt.is_jittered(cfg, s) for s in range(200)]
    assert 60 < sum(picks) < 140
    assert not any(nt.is_jittered(replace(cfg, jitter_fraction=0.0), s) for s in range(50))


def test_writes_a_resumable_dataset_with_the_expert_features(tmp_path: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    cfg = replace(
        nt.PRESETS["debug"],
        output_dir=tmp_path,
        num_scenes=1,
        novel_per_scene=False,
        generators=("demonstrator_solution",),
        batch_size=1,
        max_steps=4,
        camera_jitter_m=0.0,
        jitter_fraction=0.0,
    )
    final = nt.run(cfg)
    assert final == tmp_path / "dataset"
    ds = LeRobotDataset("local/neural", root=final)
    expert = dataset_features(64)
    for key in (IMAGE_KEY, "observation.state", "action"):
        assert ds.meta.features[key]["shape"] == tuple(expert[key]["shape"])
    assert ds.num_episodes == 1
    assert ds.meta.fps == 10
    assert len(ds) == (16 - 1) * 4 + 1
    (record,) = [json.loads(x) for x in (final / "meta" / "executor_episodes.jsonl").open()]
    assert record["imagined"] is True
    assert record["generator"] == "demonstrator_solution"
    assert isinstance(record["judge_success"], bool)
    assert isinstance(record["judge_score"], float)
    assert isinstance(record["executed_success"], bool)
    assert ds[0]["task"] == record["prompt"]
    # a rerun finds every episode cached and generates nothing
    cached = nt.cache_path(cfg, nt.episode_key(nt.draw_items(cfg)[0], "demonstrator_solution"))
    before = cached.stat().st_mtime_ns
    assert nt.generate_shard(cfg, nt.draw_items(cfg)) == 0
    assert cached.stat().st_mtime_ns == before


def test_the_references_are_the_scripted_expert_on_the_same_items(tmp_path: Path) -> None:
    """scripted_expert: the expert's own episode on the item's scene and task (a held-out
    composition included) up to its done frame, with its sim verdict; expert_video_idm: its
    clip at the imagined rate, labelled and executed by the IDM as an imagined video is."""
    cfg = replace(
        nt.PRESETS["debug"],
        output_dir=tmp_path,
        num_scenes=1,
        generators=nt.REFERENCE_GENERATORS,
        max_steps=240,
        camera_jitter_m=0.0,
        jitter_fraction=0.0,
    )
    items = nt.draw_items(cfg)
    final = nt.run(cfg)
    assert final is not None
    records = [json.loads(x) for x in (final / "meta" / "executor_episodes.jsonl").open()]
    assert [(r["generator"], r["novel_composition"]) for r in records] == [
        ("scripted_expert", False),
        ("scripted_expert", True),  # the drawn task, then one held-out composition
        ("expert_video_idm", False),
        ("expert_video_idm", True),
    ]
    assert not any(r["imagined"] for r in records)
    env = nt.make_env(nt.env_config(cfg, False))
    try:
        for item, record in zip(items, records[:2], strict=True):
            run = nt.expert_episode(env, item, cfg.expert_max_frames)
            assert run.success
            assert len(run.images) < cfg.expert_max_frames
            assert record["success_source"] == "simulator"
            assert record["executed_success"] is True
            assert isinstance(record["judge_success"], bool)
            with np.load(nt.cache_path(cfg, nt.episode_key(item, "scripted_expert"))) as data:
                np.testing.assert_array_equal(data["images"], run.images)
                np.testing.assert_array_equal(data["actions_rad"], run.actions_rad)
                np.testing.assert_array_equal(data["states_rad"], run.states_rad)
            # the first frame is the item's own scene; the expert moved
            assert np.array_equal(run.images[0], item.image_rgb)
            assert not np.allclose(run.states_rad[-1], run.states_rad[0])
            clip = nt.expert_clip(env, run, cfg.frame_stride)
            assert np.array_equal(clip[0], item.image_rgb)
            assert np.array_equal(clip[1], run.images[cfg.frame_stride])
            assert len(clip) == -(-len(run.images) // cfg.frame_stride) + 1
        for item, record in zip(items, records[2:], strict=True):
            assert record["success_source"] == "executed"
            assert isinstance(record["executed_success"], bool)  # the IDM ran it in the sim
            assert record["state_source"] == nt.STATE_SOURCE
            with np.load(nt.cache_path(cfg, nt.episode_key(item, "expert_video_idm"))) as data:
                images, states, actions = data["images"], data["states_rad"], data["actions_rad"]
            # frames held frame_stride steps, states the previous pseudo-action
            assert np.array_equal(images[0], images[cfg.frame_stride - 1])
            np.testing.assert_array_equal(states[1:], actions[:-1])
    finally:
        env.close()


def test_a_capped_expert_episode_keeps_the_cap_and_fails() -> None:
    cfg = replace(nt.PRESETS["debug"], num_scenes=1, camera_jitter_m=0.0, jitter_fraction=0.0)
    item = nt.draw_items(cfg)[0]
    env = nt.make_env(nt.env_config(cfg, False))
    try:
        run = nt.expert_episode(env, item, max_frames=5)
        clip = nt.expert_clip(env, run, frame_stride=4)
    finally:
        env.close()
    assert len(run.images) == len(run.states_rad) == len(run.actions_rad) == 5
    assert run.success is False
    assert len(clip) == 3  # frames 0 and 4, then the held frame 8


def test_the_summary_counts_executed_success_per_family_composition_and_camera() -> None:
    def record(family: str, novel: bool, jittered: bool, executed: bool | None) -> dict:
        return {
            "generator": "g",
            "task_family": family,
            "novel_composition": novel,
            "camera_jittered": jittered,
            "judge_success": True,
            "executed_success": executed,
        }

    rows = [
        record("push", False, False, True),
        record("push", True, True, False),
        record("stack", False, True, True),
        record("stack", False, False, None),  # not executed: counted nowhere
    ]
    summary = nt.summarise(rows)["g"]
    assert summary["executed_success"] == 2 / 3
    assert summary["executed_by_group"] == {
        "camera_fixed": [1, 1],
        "camera_jittered": [1, 2],
        "held_out_composition": [0, 1],
        "push": [1, 2],
        "stack": [1, 1],
        "trained_composition": [2, 2],
    }


def test_a_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    """The cache key holds the scene and generator, not the camera: a rerun that changed
    the jitter would mix two datasets silently; it is refused and names the setting."""
    cfg = replace(nt.PRESETS["debug"], output_dir=tmp_path, camera_jitter_m=0.03)
    cache = tmp_path / "cache"
    cache.mkdir()
    claim_cache(cache, nt.cache_signature(cfg))
    (cache / "sim200000-0__demonstrator_solution.npz").write_bytes(b"kept")
    with pytest.raises(ValueError, match=r"camera_jitter_m: cached 0.03, this run 0.0"):
        nt.run(replace(cfg, camera_jitter_m=0.0))
    assert (cache / "sim200000-0__demonstrator_solution.npz").read_bytes() == b"kept"
    # the settings that do not change an episode (sharding, batching) may differ
    same = replace(cfg, batch_size=cfg.batch_size + 1, num_shards=2, torch_threads=1)
    assert nt.cache_signature(same) == nt.cache_signature(cfg)


def test_only_a_lone_shard_removes_temporaries(tmp_path: Path, monkeypatch) -> None:
    """A shard started beside another must not delete the other's write in flight."""
    monkeypatch.setattr(nt, "generate_shard", lambda cfg, items: 0)
    monkeypatch.setattr(nt, "assemble_dataset", lambda cfg, items: tmp_path / "dataset")
    cfg = replace(nt.PRESETS["debug"], output_dir=tmp_path, num_scenes=1)
    in_flight = tmp_path / "cache" / ".sim200000-0__executor.npz.tmp1"
    in_flight.parent.mkdir(parents=True)
    in_flight.write_bytes(b"another shard's write")
    nt.run(replace(cfg, shard_index=1, num_shards=2))
    assert in_flight.is_file()
    nt.run(cfg)  # one shard: nobody else writes, so it is a leftover
    assert not in_flight.exists()
