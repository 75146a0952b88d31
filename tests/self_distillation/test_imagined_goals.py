"""Imagined-goal IDM pairs: the Executor re-generates expert clips (SDEdit through its own
sampler); pairs keep the simulator's real current frame and the expert's true targets;
only the IDM's own split is used; the replay measures clean and re-generated goals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from executor_sim.generate import GenerateConfig, generate
from inverse_dynamics.dataset_idm import load_episodes
from inverse_dynamics.modeling_idm import InverseDynamicsModel
from inverse_dynamics.train_idm import main as train_main
from self_distillation.imagined_goals import (
    ImaginedGoalsConfig,
    regenerate,
    run,
    sampler_step_for,
    split_of,
)
from video_models.configuration_executor import MODEL_PRESETS
from video_models.modeling_executor import build_pipeline

NUM_FRAMES = 13  # the Executor's 4 frames at stride 4: 0, 4, 8, 12


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-episode simulated dataset (32 px), a debug IDM trained on 2 of them, and a
    random 32 px debug Executor saved as a pipeline folder."""
    tmp = tmp_path_factory.mktemp("imagined_goals")
    root = tmp / "ds"
    generate(
        GenerateConfig(
            root=root,
            repo_id="test/sim",
            num_episodes=3,
            num_frames=NUM_FRAMES,
            workers=1,
            resolution=32,
            tasks=("pick_place", "push"),
        ),
        progress=False,
    )
    idm = tmp / "idm"
    train_main(
        [
            "--preset=debug",
            f"--dataset_root={root}",
            f"--output_dir={idm}",
            "--val_fraction=0.34",
            "--cpu=true",
        ]
    )
    executor = tmp / "executor"
    build_pipeline(replace(MODEL_PRESETS["debug"], size_px=32), seed=0).save_pretrained(executor)
    return {"root": root, "idm": idm / "model", "executor": executor, "tmp": tmp}


def _config(setup: dict[str, Path], **kw) -> ImaginedGoalsConfig:
    return ImaginedGoalsConfig(
        dataset_root=setup["root"],
        idm=setup["idm"],
        executor=setup["executor"],
        sigmas=(0.5, 0.8),
        num_threads=1,
        **kw,
    )


def test_train_pairs_are_real_current_frames_regenerated_goals_true_labels(setup) -> None:
    out = setup["tmp"] / "train.npz"
    summary = run(_config(setup, split="train", output=out))
    train = split_of(setup["idm"], setup["root"], "train")
    heldout = split_of(setup["idm"], setup["root"], "heldout")
    assert summary["episodes"] == train
    assert not set(train) & set(heldout)
    with np.load(out) as data:
        frames, q, actions, clips = (
            data["frames"],
            data["state_rad"],
            data["actions_rad"],
            data["clips"],
        )
        meta = json.loads(str(data["metadata_json"]))
    # 2 sigmas x 2 training episodes x 3 pairs (4 frames)
    assert frames.shape == (12, 2, 3, 32, 32)
    assert frames.dtype == np.uint8
    assert q.shape == (12, 6)
    assert actions.shape == (12, 4, 6)
    assert clips.shape == (2, 2, 4, 32, 32, 3)
    assert meta["split"] == "train"
    assert len(meta["sigmas_used"]) == 2
    config = InverseDynamicsModel.from_pretrained(setup["idm"]).config
    first = load_episodes(setup["root"], config, [train[0]])[0]
    # current frames and labels are the recording's, at t = 0, 4, 8
    np.testing.assert_array_equal(frames[:3, 0], first.frames[[0, 4, 8]].numpy())
    np.testing.assert_array_equal(actions[:3], first.action_rad[:12].reshape(3, 4, 6).numpy())
    np.testing.assert_array_equal(q[:3], first.state_rad[[0, 4, 8]].numpy())
    # goals are the re-generated frames 1..3 of the first sigma's clip, not the recording's
    np.testing.assert_array_equal(frames[:3, 1], clips[0, 0, 1:].transpose(0, 3, 1, 2))
    assert not np.array_equal(frames[:3, 1], first.frames[[4, 8, 12]].numpy())


def test_regeneration_starts_from_the_clip_at_the_chosen_noise_level(setup) -> None:
    from self_distillation.video_models import load_video_pipeline

    pipe = load_video_pipeline(setup["executor"], "debug", device="cpu")
    k, sigma_k = sampler_step_for(pipe, 0.5)
    sigmas = pipe.scheduler.sigmas[:-1].numpy()
    assert k >= 1
    assert sigma_k == pytest.approx(sigmas[k])
    assert abs(sigma_k - 0.5) == pytest.approx(np.abs(sigmas[1:] - 0.5).min())
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 255, (2, 4, 32, 32, 3), dtype=np.uint8)
    a = regenerate(pipe, clips, ["push the red cube", "push the red cube"], 0.5, [1, 2])
    b = regenerate(pipe, clips, ["push the red cube", "push the red cube"], 0.5, [1, 2])
    free = pipe(image=list(clips[:, 0]), prompt=["push the red cube"] * 2, seed=[1, 2])
    np.testing.assert_array_equal(a, b)  # seeded
    np.testing.assert_array_equal(a[:, 0], clips[:, 0])  # frame 0 is the camera frame
    # the clip was put in: closer to it than the same seeds imagined from noise alone
    err_sdedit = np.abs(a[:, 1:].astype(float) - clips[:, 1:]).mean()
    err_free = np.abs(free.frames[:, 1:].astype(float) - clips[:, 1:]).mean()
    assert err_sdedit < err_free


def test_replay_reports_clean_and_regenerated_goals_on_heldout(setup) -> None:
    out = setup["tmp"] / "heldout.npz"
    summary_json = setup["tmp"] / "summary.json"
    cfg = _config(
        setup,
        split="heldout",
        output=out,
        replay_checkpoints=(setup["idm"],),
        summary_json=summary_json,
    )
    summary = run(cfg)
    replay = summary["imagined_goal_replay"][str(setup["idm"])]
    assert set(replay) == {"clean", "sigma_0.5", "sigma_0.8"}
    for goal in replay.values():
        assert goal["n"] == 1
        assert len(goal["per_episode"]) == 1
        assert 0.0 <= goal["success"] <= 1.0
    assert json.loads(summary_json.read_text())["split"] == "heldout"
    # a second run with the same inputs reuses the clips: same pairs, same replay
    stamp = out.stat().st_mtime_ns
    again = run(cfg)
    assert out.stat().st_mtime_ns == stamp
    assert again["imagined_goal_replay"] == summary["imagined_goal_replay"]


def test_bad_config_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"1\.5"):
        ImaginedGoalsConfig(sigmas=(0.5, 1.5))
    with pytest.raises(ValueError, match="'train'"):
        ImaginedGoalsConfig(split="train", replay_checkpoints=(Path("x"),))
    with pytest.raises(ValueError, match="npz"):
        ImaginedGoalsConfig(output=Path("pairs.json"))
