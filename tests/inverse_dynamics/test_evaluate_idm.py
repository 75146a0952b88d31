from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from executor_sim.env import EnvConfig, make_env
from executor_sim.rollout import rollout_expert
from inverse_dynamics.configuration_idm import IDMConfig
from inverse_dynamics.dataset_idm import EpisodeArrays
from inverse_dynamics.evaluate_idm import EvalIDMConfig, evaluate, replay_episode
from inverse_dynamics.modeling_idm import InverseDynamicsModel
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from inverse_dynamics.train_idm import main as train_main


@pytest.fixture(scope="module")
def trained(synthetic_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("idm_eval") / "run"
    train_main(
        [
            "--preset=debug",
            f"--dataset_root={synthetic_dataset}",
            f"--output_dir={out}",
            "--val_fraction=0.25",
            "--steps=3",
        ]
    )
    return out / "model"


def test_action_error_on_the_checkpoints_heldout_split(trained: Path, tmp_path: Path) -> None:
    out_json = tmp_path / "eval.json"
    results = evaluate(EvalIDMConfig(checkpoint=trained, replay=False, output_json=out_json))
    # 4 episodes, 25 % held out: exactly one, and the same one as the training run logged.
    state = json.loads((trained.parent / "checkpoints/step_000003/training_state.json").read_text())
    assert results["episodes"] == state["val_episodes"]
    assert len(results["episodes"]) == 1
    for key in ("action_mae_rad_with_state", "action_mae_rad_without_state"):
        mae = np.array(results[key])
        assert mae.shape == (6,)
        # An almost untrained model: errors are positive but bounded by the joint ranges.
        assert np.all(mae > 0)
        assert np.all(mae < 4.0)
    assert json.loads(out_json.read_text()) == results


def test_explicit_episodes_and_bad_settle_steps(trained: Path) -> None:
    results = evaluate(EvalIDMConfig(checkpoint=trained, replay=False, episodes=(0, 2)))
    assert results["episodes"] == [0, 2]
    with pytest.raises(ValueError, match="-1"):
        EvalIDMConfig(settle_steps=-1)


def test_replay_in_the_simulator_reproduces_the_expert() -> None:
    """One real expert rollout: replaying its recorded actions reproduces its outcome, and
    the IDM replays run the same number of steps through the real simulator."""
    env = make_env(EnvConfig(image_size_px=32))
    try:
        rollout = rollout_expert(env, seed=1_000_000, family="pick_place", num_frames=48)
        assert rollout.metadata["success"], "the scripted expert should solve this seed"
        frames = torch.from_numpy(rollout.images).permute(0, 3, 1, 2).contiguous()
        episode = EpisodeArrays(
            0, frames, torch.from_numpy(rollout.states_rad), torch.from_numpy(rollout.actions_rad)
        )
        record = {"episode_index": 0, **rollout.metadata}
        tiny = IDMConfig(image_size_px=32, conv_channels=(8, 16), hidden_dim=32)
        policy = InverseDynamicsPolicy(InverseDynamicsModel(tiny))
        ok, clipped = replay_episode(policy, env, record, episode, "expert", settle_steps=2)
        assert ok
        assert clipped == 0
        for mode in ("open_loop", "closed_loop"):
            ok, _ = replay_episode(policy, env, record, episode, mode, settle_steps=2)
            assert env.step_index == 48 + 2  # same time budget as the recording
            assert not ok  # an untrained IDM cannot pick and place
    finally:
        env.close()
