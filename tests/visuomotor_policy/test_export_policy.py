"""executor-export-policy: the weights in half precision, everything else unchanged, and
the exported checkpoint loads and acts as the original does (up to the rounding)."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.types import Observation
from visuomotor_policy.export_policy import WEIGHTS, ExportPolicyConfig, export_policy, main
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy

ROBOT = RobotDescription.from_yaml(default_robot_path())


def _chunk(folder: Path) -> np.ndarray:
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    policy.reset()
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    obs = Observation(image, 0.0, ROBOT.home_rad, ROBOT.joint_names)
    return policy.next_chunk(obs, "push the red cube").joint_positions_rad


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_export_halves_the_weights_and_acts_alike(
    tiny_act_dir: Path, tmp_path: Path, dtype: str
) -> None:
    dst = tmp_path / "exported"
    summary = export_policy(ExportPolicyConfig(src=tiny_act_dir, dst=dst, dtype=dtype))
    weights = load_file(dst / WEIGHTS)
    original = load_file(tiny_act_dir / WEIGHTS)
    assert set(weights) == set(original)
    floats = [k for k, t in original.items() if t.is_floating_point()]
    assert floats
    assert all(str(weights[k].dtype) == f"torch.{dtype}" for k in floats)
    assert summary["dst_bytes"] < 0.6 * summary["src_bytes"]
    assert 0 < summary["max_weight_rounding"] < 0.05
    # every other file is copied byte for byte
    others = sorted(p.name for p in tiny_act_dir.iterdir() if p.name != WEIGHTS)
    assert sorted(p.name for p in dst.iterdir() if p.name != WEIGHTS) == others
    assert all(filecmp.cmp(tiny_act_dir / n, dst / n, shallow=False) for n in others)
    # loaded into the float32 policy, it acts as the original within the rounding
    np.testing.assert_allclose(_chunk(dst), _chunk(tiny_act_dir), atol=0.01)


def test_the_evaluated_chunk_length_becomes_the_policys_own(
    tiny_act_dir: Path, tmp_path: Path
) -> None:
    """n_action_steps 6 (the tiny ACT's own is 4, its chunk 8) goes into config.json, so a
    policy_node at its default (the policy's own) runs 6-action chunks."""
    dst = tmp_path / "six"
    summary = export_policy(ExportPolicyConfig(src=tiny_act_dir, dst=dst, n_action_steps=6))
    assert summary["n_action_steps"] == 6
    assert json.loads((dst / "config.json").read_text())["n_action_steps"] == 6
    policy = LeRobotChunkPolicy.from_pretrained(dst)
    assert policy.n_action_steps == 6
    with pytest.raises(ValueError, match=r"n_action_steps 9 is longer .* \(8 actions"):
        export_policy(ExportPolicyConfig(src=tiny_act_dir, dst=tmp_path / "nine", n_action_steps=9))
    assert not (tmp_path / "nine").exists()


def test_bad_exports_are_named_and_write_nothing(tiny_act_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dst must differ from src"):
        ExportPolicyConfig(src=tiny_act_dir, dst=tiny_act_dir)
    dst = tmp_path / "out"
    assert main([f"--src={tmp_path / 'missing'}", f"--dst={dst}"]) == 2
    assert main([f"--src={tiny_act_dir}", f"--dst={dst}", "--dtype=int8"]) == 2
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == []
