"""LeRobotChunkPolicy over a tiny random ACT saved to a temporary folder: features mapped,
chunk shape and rate, reset, refusal of pickles, bad mappings named; and the goal runner's
policy mode over the simulator adapter (how policies are evaluated in simulation)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from lerobot.configs import FeatureType, PolicyFeature
from lerobot.policies.factory import get_policy_class, make_policy_config, make_pre_post_processors

from executor_core.goal_runner import GoalRunner, GoalRunnerConfig, Guard
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_core.types import Observation
from executor_sim.env import EnvConfig, make_env
from executor_sim.generate import IMAGE_KEY, JOINT_NAMES
from executor_sim.sim_arm import SimArm
from visuomotor_policy.configuration_policy import (
    PRESETS,
    SIM_IMAGE_KEY,
    SO101_JOINTS,
    PolicyIOConfig,
)
from visuomotor_policy.modeling_policy import LeRobotChunkPolicy
from visuomotor_policy.testing import save_tiny_random_act

ROBOT = RobotDescription.from_yaml(default_robot_path())


def observation(size: tuple[int, int] = (48, 64), names: tuple[str, ...] = SO101_JOINTS):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    q = np.array([ROBOT.home_rad[ROBOT.joint_names.index(n)] for n in names])
    return Observation(image, 0.0, q, names)


def test_defaults_are_the_sim_datasets_features() -> None:
    assert SIM_IMAGE_KEY == IMAGE_KEY
    assert SO101_JOINTS == JOINT_NAMES == ROBOT.joint_names
    assert set(PRESETS) >= {"debug"}


def test_the_checkpoint_is_what_lerobots_trainer_writes(tiny_act_dir: Path) -> None:
    names = {p.name for p in tiny_act_dir.iterdir()}
    assert {"config.json", "model.safetensors", "policy_preprocessor.json"} <= names
    assert "policy_postprocessor.json" in names
    config = json.loads((tiny_act_dir / "config.json").read_text())
    assert config["type"] == "act"
    assert config["pretrained_backbone_weights"] is None  # nothing was downloaded


def test_next_chunk_is_the_policys_chunk_at_its_rate(tiny_act_dir: Path) -> None:
    policy = LeRobotChunkPolicy.from_pretrained(tiny_act_dir)
    assert policy.image_size_px == 32  # the policy's own feature size
    assert policy.n_action_steps == 4  # the policy's own n_action_steps
    policy.reset()
    chunk = policy.next_chunk(observation(), "put the red cube in the bowl")
    assert chunk.joint_positions_rad.shape == (4, 6)
    assert chunk.control_rate_hz == 10.0
    assert chunk.joint_names == SO101_JOINTS
    assert np.all(np.isfinite(chunk.joint_positions_rad))
    # the tiny policy's statistics keep it near home (std 0.05 rad)
    assert np.max(np.abs(chunk.joint_positions_rad - ROBOT.home_rad)) < 1.0
    # reset + the same observation: the same chunk (no state kept across goals)
    policy.reset()
    again = policy.next_chunk(observation(), "put the red cube in the bowl")
    np.testing.assert_allclose(again.joint_positions_rad, chunk.joint_positions_rad, atol=1e-6)


def test_features_are_cropped_resized_and_in_the_policys_joint_order(tiny_act_dir: Path) -> None:
    policy = LeRobotChunkPolicy.from_pretrained(tiny_act_dir)
    shuffled = tuple(reversed(SO101_JOINTS))
    frame = policy.features(observation(size=(48, 64), names=shuffled))
    assert frame[SIM_IMAGE_KEY].shape == (32, 32, 3)
    assert frame[SIM_IMAGE_KEY].dtype == np.uint8
    np.testing.assert_allclose(frame["observation.state"], ROBOT.home_rad, atol=1e-6)


def test_io_config_overrides_the_chunk_length_and_rate(tiny_act_dir: Path) -> None:
    io = PolicyIOConfig(n_action_steps=6, fps_hz=5.0, image_size_px=40)
    policy = LeRobotChunkPolicy.from_pretrained(tiny_act_dir, io)
    policy.reset()
    chunk = policy.next_chunk(observation(), "push")
    assert chunk.joint_positions_rad.shape == (6, 6)
    assert chunk.control_rate_hz == 5.0
    assert policy.features(observation())[SIM_IMAGE_KEY].shape == (40, 40, 3)


def test_pickles_are_refused_naming_the_file(tiny_act_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_act_dir, folder)
    (folder / "training_args.bin").write_bytes(b"\x80\x04")
    with pytest.raises(
        ValueError, match=r"found training_args\.bin in .*pickled weights are refused"
    ):
        LeRobotChunkPolicy.from_pretrained(folder)


def test_missing_folder_and_files_are_named(tiny_act_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"policy checkpoint folder not found.*no hub"):
        LeRobotChunkPolicy.from_pretrained(tmp_path / "nowhere")
    folder = tmp_path / "no_weights"
    shutil.copytree(tiny_act_dir, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors not found"):
        LeRobotChunkPolicy.from_pretrained(folder)


def test_a_mapping_the_policy_cannot_read_is_named(tiny_act_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"image_key 'observation.images.wrist' is not a visual"):
        LeRobotChunkPolicy.from_pretrained(
            tiny_act_dir, PolicyIOConfig(image_key="observation.images.wrist")
        )
    with pytest.raises(ValueError, match=r"has shape \(6,\), joint_names .* has 5"):
        LeRobotChunkPolicy.from_pretrained(
            tiny_act_dir, PolicyIOConfig(joint_names=JOINT_NAMES[:5])
        )
    with pytest.raises(ValueError, match="reads the state"):
        LeRobotChunkPolicy.from_pretrained(tiny_act_dir, PolicyIOConfig(state_key=""))


def test_a_policy_without_a_state_input_gets_the_frame_only(tmp_path: Path) -> None:
    """A state-free policy (``--use_state false``) loads with the default mapping; the
    joint state is not fed, so an observation without joints still gives a chunk."""
    folder = save_tiny_random_act(tmp_path / "nostate", use_state=False)
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    assert policy.io.state_key == ""
    assert not policy.reads_state
    frame_only = Observation(observation().image_rgb, 0.0)
    assert set(policy.features(frame_only)) == {SIM_IMAGE_KEY}
    policy.reset()
    chunk = policy.next_chunk(frame_only, "push the red cube onto the mat")
    assert chunk.joint_positions_rad.shape == (4, 6)
    assert np.all(np.isfinite(chunk.joint_positions_rad))


def test_an_observation_without_the_policys_joints_is_named(tiny_act_dir: Path) -> None:
    policy = LeRobotChunkPolicy.from_pretrained(tiny_act_dir)
    other = Observation(observation().image_rgb, 0.0, np.zeros(6), ("a", "b", "c", "d", "e", "f"))
    with pytest.raises(ValueError, match=r"missing \['shoulder_pan'"):
        policy.next_chunk(other, "push")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("image_key", "camera", "image_key"),
        ("state_key", "joints", "state_key"),
        ("image_size_px", 4, "image_size_px"),
        ("joint_names", ("a", "a"), "joint_names"),
        ("n_action_steps", -1, "n_action_steps"),
        ("fps_hz", 0.0, "fps_hz"),
    ],
)
def test_io_config_is_validated(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PolicyIOConfig(**{field: value})


def test_the_goal_runner_drives_the_policy_in_the_simulator(tiny_act_dir: Path) -> None:
    env = make_env(EnvConfig(image_size_px=64))
    try:
        env.reset(3)
        arm = SimArm(env, env.task)
        policy = LeRobotChunkPolicy.from_pretrained(tiny_act_dir)
        runner = GoalRunner.for_policy(policy, ROBOT, GoalRunnerConfig(max_chunks=3))
        result = runner.run(env.task.prompt, arm, Guard(10.0, clock=arm.clock))
    finally:
        env.close()
    assert result.status in ("succeeded", "aborted"), result.message
    assert "max_chunks 3" in result.message or result.success
    (segment,) = result.segments
    assert len(segment.sent) == 3
    assert arm.steps >= 12  # 3 chunks of 4 control steps, sampled at the sim's 10 Hz
    assert len(arm.frames) == arm.steps + 1


def test_any_lerobot_policy_type_loads_a_diffusion_policy_too(tmp_path: Path) -> None:
    """Not only ACT: a tiny random diffusion policy (observation history of 2, min-max
    normalised actions), saved with its processors, gives chunks the same way."""
    features = {
        SIM_IMAGE_KEY: PolicyFeature(FeatureType.VISUAL, (3, 64, 64)),
        "observation.state": PolicyFeature(FeatureType.STATE, (6,)),
    }
    config = make_policy_config(
        "diffusion",
        input_features=features,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
        device="cpu",
        push_to_hub=False,
        crop_shape=None,
        down_dims=(16, 32),
        pretrained_backbone_weights=None,
        num_inference_steps=2,
        horizon=8,
        n_action_steps=4,
        n_obs_steps=2,
    )
    home = torch.tensor(ROBOT.home_rad, dtype=torch.float32)
    image_stats = {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25)}
    stats = {
        SIM_IMAGE_KEY: {**image_stats, "min": torch.zeros(3, 1, 1), "max": torch.ones(3, 1, 1)},
        "observation.state": {"min": home - 1.0, "max": home + 1.0},
        "action": {"min": home - 0.05, "max": home + 0.05},
    }
    torch.manual_seed(0)
    folder = tmp_path / "diffusion"
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    for part in (get_policy_class("diffusion")(config), preprocessor, postprocessor):
        part.save_pretrained(folder)
    policy = LeRobotChunkPolicy.from_pretrained(folder)
    policy.reset()
    chunk = policy.next_chunk(observation(), "push")
    assert type(policy.policy).__name__ == "DiffusionPolicy"
    assert chunk.joint_positions_rad.shape == (4, 6)
    # min-max normalised: every action within the statistics' range around home
    assert np.max(np.abs(chunk.joint_positions_rad - ROBOT.home_rad)) <= 0.05 + 1e-5


def test_a_chunk_is_one_inference_whatever_its_length(tiny_act_dir: Path) -> None:
    """An n_action_steps override (6, the policy's own is 4, its chunk 8) is the first 6
    actions of one inference: the same observation twice gives the same chunk, and no
    queued action of the first inference reaches the second chunk."""
    policy = LeRobotChunkPolicy.from_pretrained(tiny_act_dir, PolicyIOConfig(n_action_steps=6))
    assert policy.policy.config.n_action_steps == 6
    policy.reset()
    first = policy.next_chunk(observation(), "push").joint_positions_rad
    second = policy.next_chunk(observation(), "push").joint_positions_rad
    assert first.shape == second.shape == (6, 6)
    np.testing.assert_allclose(second, first, atol=1e-6)
    # the six are one prediction: the policy's own chunk, postprocessed
    own = LeRobotChunkPolicy.from_pretrained(tiny_act_dir, PolicyIOConfig(n_action_steps=8))
    own.reset()
    whole = own.next_chunk(observation(), "push").joint_positions_rad
    np.testing.assert_allclose(first, whole[:6], atol=1e-6)


def test_a_chunk_longer_than_the_policy_predicts_is_named(tiny_act_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"n_action_steps 9 is longer .* \(8 actions"):
        LeRobotChunkPolicy.from_pretrained(tiny_act_dir, PolicyIOConfig(n_action_steps=9))


def test_temporal_ensembling_averages_overlapping_inferences(tiny_act_dir: Path) -> None:
    """ACT's temporal ensembling: one action per chunk. The first equals the plain policy's
    first action; the second averages two inferences, so on a new observation it differs
    from both the plain first action of that observation and the first chunk's second."""
    io = PolicyIOConfig(temporal_ensemble_coeff=0.01)
    ensembled = LeRobotChunkPolicy.from_pretrained(tiny_act_dir, io)
    plain = LeRobotChunkPolicy.from_pretrained(tiny_act_dir, PolicyIOConfig(n_action_steps=8))
    assert ensembled.n_action_steps == 1
    assert ensembled.policy.config.temporal_ensemble_coeff == 0.01
    ensembled.reset()
    plain.reset()
    other = observation()
    other.image_rgb[:] = 255 - other.image_rgb
    a0 = ensembled.next_chunk(observation(), "push").joint_positions_rad
    p0 = plain.next_chunk(observation(), "push").joint_positions_rad
    assert a0.shape == (1, 6)
    np.testing.assert_allclose(a0[0], p0[0], atol=1e-6)
    a1 = ensembled.next_chunk(other, "push").joint_positions_rad[0]
    plain.reset()
    p1 = plain.next_chunk(other, "push").joint_positions_rad
    assert np.max(np.abs(a1 - p1[0])) > 1e-6
    assert np.max(np.abs(a1 - p0[1])) > 1e-6
    # weights exp(-0.01 * age) over the two predictions of step 1
    w_old, w_new = 1.0, np.exp(-0.01)
    np.testing.assert_allclose(a1, (w_old * p0[1] + w_new * p1[0]) / (w_old + w_new), atol=1e-5)
    ensembled.reset()
    np.testing.assert_allclose(
        ensembled.next_chunk(observation(), "push").joint_positions_rad, a0, atol=1e-6
    )


@pytest.mark.parametrize(
    ("io", "match"),
    [
        (dict(temporal_ensemble_coeff=0.01, n_action_steps=4), "n_action_steps must be 0 or 1"),
        (dict(temporal_ensemble_coeff=float("nan")), "temporal_ensemble_coeff must be finite"),
    ],
)
def test_temporal_ensembling_settings_are_validated(io: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PolicyIOConfig(**io)
