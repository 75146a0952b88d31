"""DAgger corrections: collected closed loop in the real simulator on training episodes only,
labelled with the expert's recorded targets, and mixed into IDM training."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from executor_sim.generate import GenerateConfig, generate
from inverse_dynamics.collect_corrections import (
    CollectCorrectionsConfig,
    arm_offset_goals,
    collect,
)
from inverse_dynamics.dataset_idm import CorrectionSampler, load_episodes
from inverse_dynamics.evaluate_idm import env_for_dataset, episode_records
from inverse_dynamics.modeling_idm import InverseDynamicsModel
from inverse_dynamics.train_idm import main as train_main

NUM_FRAMES = 13  # goal frames 4, 8, 12: 3 chunks at frame_stride 4


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 3-episode simulated dataset (32 px) and a debug IDM trained on 2 of them."""
    tmp = tmp_path_factory.mktemp("corrections")
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
    out = tmp / "idm"
    train_main(
        [
            "--preset=debug",
            f"--dataset_root={root}",
            f"--output_dir={out}",
            "--val_fraction=0.34",
            "--cpu=true",
        ]
    )
    return root, out


def test_collects_training_episodes_with_expert_labels(
    sim_run: tuple[Path, Path], tmp_path: Path
) -> None:
    root, run = sim_run
    state = json.loads((run / "checkpoints/step_000002/training_state.json").read_text())
    output = tmp_path / "c.npz"
    leftover = tmp_path / ".c.npz.x1y2.tmp.npz"  # what a run killed while saving leaves
    leftover.write_bytes(b"half an archive")
    summary = collect(
        CollectCorrectionsConfig(checkpoint=run / "model", dataset_root=root, output=output)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]  # the leftover is gone
    with np.load(output) as data:
        frames, q, actions = data["frames"], data["state_rad"], data["actions_rad"]
        meta = json.loads(str(data["metadata_json"]))
    # The held-out episode is never used: only the 2 training episodes, 3 chunks each.
    assert meta["sources"][0]["episodes"] == state["train_episodes"]
    assert state["val_episodes"][0] not in meta["sources"][0]["episodes"]
    assert summary["num_samples"] == 2 * 3
    assert frames.shape == (6, 2, 3, 32, 32)
    assert frames.dtype == np.uint8
    assert q.shape == (6, 6)
    assert actions.shape == (6, 4, 6)
    # Goal frames and labels are the recording's; the current frame is the simulator's.
    policy_cfg = InverseDynamicsModel.from_pretrained(run / "model").config
    recorded = load_episodes(root, policy_cfg, state["train_episodes"])
    first = recorded[0]
    assert np.array_equal(frames[:3, 1], first.frames[4::4][:3].numpy())
    assert np.allclose(actions[:3], first.action_rad[:12].reshape(3, 4, 6).numpy())
    # The first chunk starts from the recorded scene, so state 0 is the recorded state 0.
    assert np.allclose(q[0], first.state_rad[0].numpy(), atol=1e-4)
    # Later states are where the (untrained) policy drove the arm, not the recording.
    assert not np.allclose(q[1:3], first.state_rad[4:12:4].numpy(), atol=1e-3)


def test_the_held_out_split_must_match_the_checkpoint(sim_run: tuple[Path, Path]) -> None:
    _, run = sim_run
    with pytest.raises(ValueError, match="trained on"):
        collect(CollectCorrectionsConfig(checkpoint=run / "model", dataset_root=Path("elsewhere")))
    with pytest.raises(ValueError, match=r"'c\.txt'"):
        CollectCorrectionsConfig(output=Path("c.txt"))
    with pytest.raises(ValueError, match=r"-0\.1"):
        CollectCorrectionsConfig(action_noise_std_rad=-0.1)
    for bad in (-0.01, 0.9, float("nan")):
        with pytest.raises(ValueError, match=f"goal_arm_noise_rad.*{bad}"):
            CollectCorrectionsConfig(goal_arm_noise_rad=bad)


def test_arm_offset_goals_move_the_arm_and_keep_the_expert_labels(
    sim_run: tuple[Path, Path], tmp_path: Path
) -> None:
    root, run = sim_run
    base = CollectCorrectionsConfig(checkpoint=run / "model", dataset_root=root)
    runs = {"recorded": None, "rerendered": 0.0, "moved": 0.05}
    for name, noise in runs.items():
        collect(replace(base, output=tmp_path / f"{name}.npz", goal_arm_noise_rad=noise))
    loaded = {name: dict(np.load(tmp_path / f"{name}.npz")) for name in runs}
    for name, noise in runs.items():
        # The rollout is the same: current frames, states and labels; only the goals differ.
        for key in ("state_rad", "actions_rad"):
            np.testing.assert_array_equal(loaded[name][key], loaded["recorded"][key])
        np.testing.assert_array_equal(
            loaded[name]["frames"][:, 0], loaded["recorded"]["frames"][:, 0]
        )
        assert json.loads(str(loaded[name]["metadata_json"]))["goal_arm_noise_rad"] == noise
    recorded, rerendered, moved = (loaded[n]["frames"][:, 1].astype(float) for n in runs)
    # Each re-rendered goal is the replayed expert's state one stride on: of all recorded
    # frames it is nearest the recorded goal (the rest is the dataset's video compression).
    state = json.loads((run / "checkpoints/step_000002/training_state.json").read_text())
    first = state["train_episodes"][0]
    config = InverseDynamicsModel.from_pretrained(run / "model").config
    episode = load_episodes(root, config, [first])[0]
    frames = episode.frames.numpy().astype(float)
    for c in range(3):
        errors = np.abs(frames - rerendered[c]).mean(axis=(1, 2, 3))
        assert int(np.argmin(errors)) == 4 * (c + 1), errors
    env = env_for_dataset(root, 32)
    try:
        same = arm_offset_goals(
            env, episode_records(root)[first], episode, 4, 32, 0.0, np.random.default_rng(0)
        )
    finally:
        env.close()
    np.testing.assert_array_equal(same.numpy(), rerendered[:3])
    # The offset moves the drawn arm: further from the unmoved re-render than compression is.
    compression = np.abs(rerendered - recorded).mean()
    assert np.abs(moved - rerendered).mean() > compression


def test_training_mixes_corrections_from_a_checkpoint(
    sim_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, run = sim_run
    output = tmp_path / "c.npz"
    collect(CollectCorrectionsConfig(checkpoint=run / "model", dataset_root=root, output=output))
    start = InverseDynamicsModel.from_pretrained(run / "model")
    out = tmp_path / "round1"
    args = [
        "--preset=debug",
        f"--dataset_root={root}",
        f"--output_dir={out}",
        "--val_fraction=0.34",
        "--cpu=true",
        f"--init_from={run / 'model'}",
        f"--corrections={output}",
        "--corrections_fraction=0.5",
    ]
    train_main(args)
    tuned = InverseDynamicsModel.from_pretrained(out / "model")
    # Normalisation is the starting checkpoint's; the weights moved from it.
    assert torch.equal(tuned.action_std, start.action_std)
    assert not torch.equal(tuned.head[0].weight, start.head[0].weight)
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["corrections"] == [str(output)]
    assert saved["init_from"] == str(run / "model")
    train_main([*args, "--steps=3"])  # resumes
    assert (out / "checkpoints/step_000003/model/model.safetensors").is_file()

    # A checkpoint of another shape is bad input: exit 2, one line naming init_from.
    assert train_main([*args[:-3], f"--init_from={run / 'model'}", "--model.hidden_dim=48"]) == 2
    assert "init_from" in capsys.readouterr().err.splitlines()[-1]
    sampler = CorrectionSampler([output], start.config)
    frames, _, actions = sampler.sample(5, torch.Generator().manual_seed(0))
    assert frames.shape == (5, 2, 3, 32, 32)
    assert actions.shape == (5, 4, 6)
    with pytest.raises(ValueError, match="num_input_frames"):
        CorrectionSampler([output], replace(start.config, num_input_frames=3))


def test_extra_roots_contribute_every_episode(sim_run: tuple[Path, Path], tmp_path: Path) -> None:
    root, run = sim_run
    summary = collect(
        CollectCorrectionsConfig(
            checkpoint=run / "model",
            dataset_root=root,
            extra_dataset_roots=(root,),
            max_episodes_per_root=2,
            output=tmp_path / "c.npz",
        )
    )
    with np.load(tmp_path / "c.npz") as data:
        sources = json.loads(str(data["metadata_json"]))["sources"]
    # The extra root is used whole (no held-out split there): episodes 0 and 1 of 3.
    assert sources[1] == {"dataset_root": str(root), "episodes": [0, 1]}
    assert summary["num_samples"] == (2 + 2) * 3
