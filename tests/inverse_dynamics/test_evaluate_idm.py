from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inverse_dynamics.evaluate_idm import EvalIDMConfig, evaluate
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
