"""The world: determinism per seed, state round trip, action checks, camera geometry."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from executor_sim import EnvConfig, TabletopEnv
from executor_sim import scene as sc


def _rollout(env: TabletopEnv, seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    obs = env.reset(seed)
    rng = np.random.default_rng(seed)
    images, states = [obs["image"]], [obs["state"]]
    for _ in range(steps):
        action = env.home_rad + rng.uniform(-0.2, 0.2, size=6)
        obs = env.step(action)
        images.append(obs["image"])
        states.append(obs["state"])
    return np.stack(images), np.stack(states)


def test_reset_observation_contract(env: TabletopEnv) -> None:
    obs = env.reset(0)
    assert obs["image"].shape == (64, 64, 3)
    assert obs["image"].dtype == np.uint8
    assert obs["state"].shape == (6,)
    assert obs["state"].dtype == np.float32
    np.testing.assert_allclose(obs["state"], env.home_rad, atol=0.02)
    assert env.render(32).shape == (32, 32, 3)
    assert env.task is not None
    assert env.scene is not None
    assert 2 <= len(env.scene.cubes) <= 4


def test_determinism_per_seed(env: TabletopEnv) -> None:
    images_a, states_a = _rollout(env, 5, 4)
    images_b, states_b = _rollout(env, 5, 4)
    np.testing.assert_array_equal(images_a, images_b)
    np.testing.assert_array_equal(states_a, states_b)
    images_c, _ = _rollout(env, 6, 0)
    assert not np.array_equal(images_a[0], images_c[0])  # another seed, another layout


def test_state_round_trip(env: TabletopEnv) -> None:
    env.reset(1)
    env.step(env.home_rad + 0.1)
    saved = env.get_state()
    after_a = env.step(env.home_rad - 0.1)
    env.set_state(saved)
    after_b = env.step(env.home_rad - 0.1)
    np.testing.assert_array_equal(after_a["state"], after_b["state"])
    np.testing.assert_array_equal(after_a["image"], after_b["image"])


def test_renders_the_arm_elsewhere_and_puts_the_world_back(env: TabletopEnv) -> None:
    env.reset(3)
    env.step(env.home_rad + 0.1)
    saved = env.get_state()
    env.set_state(saved)  # a forward pass: the drawn arm is at the integrated joints
    here = env.render()
    # At the arm's own joints the frame is the camera's frame.
    np.testing.assert_array_equal(env.render_with_arm_at(env.joint_positions_rad()), here)
    moved = env.joint_positions_rad() + np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.0])
    elsewhere = env.render_with_arm_at(moved, 32)
    assert elsewhere.shape == (32, 32, 3)
    assert not np.array_equal(elsewhere, env.render(32))  # the arm is drawn turned
    # Nothing moved in the world: the same state, the same next step as without the call.
    np.testing.assert_array_equal(env.get_state().physics, saved.physics)
    np.testing.assert_array_equal(env.render(), here)
    after = env.step(env.home_rad)
    env.set_state(saved)
    np.testing.assert_array_equal(env.step(env.home_rad)["image"], after["image"])
    with pytest.raises(ValueError, match=r"6 finite values.*nan"):
        env.render_with_arm_at(np.array([0.0, 0.0, 0.0, 0.0, 0.0, np.nan]))
    with pytest.raises(ValueError, match="6 finite values"):
        env.render_with_arm_at(np.zeros(5))


def test_tracks_joint_targets(env: TabletopEnv) -> None:
    env.reset(2)
    target = env.home_rad + np.array([0.3, 0.2, -0.2, 0.1, 0.5, 0.3])
    for _ in range(10):
        env.step(target)
    np.testing.assert_allclose(env.joint_positions_rad(), target, atol=0.03)


def test_bad_actions_are_rejected_or_counted(env: TabletopEnv, caplog) -> None:
    env.reset(0)
    with pytest.raises(ValueError, match=r"\(5,\)"):
        env.step(np.zeros(5))
    with pytest.raises(ValueError, match="nan"):
        env.step(np.full(6, np.nan))
    before = env.num_clipped_actions
    beyond = env.upper_rad + 0.5
    with caplog.at_level(logging.DEBUG, logger="executor_sim.env"):
        env.step(beyond)
        env.step(beyond)
    assert env.num_clipped_actions == before + 2
    np.testing.assert_array_equal(env.target_rad, env.upper_rad)
    levels = [r.levelno for r in caplog.records if "outside joint limits" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG]  # one warning per episode
    assert "'gripper': 0.5" in caplog.records[0].getMessage()  # names joint and excess
    caplog.clear()
    env.reset(1)
    env.step(beyond)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_config_errors_quote_the_value() -> None:
    with pytest.raises(ValueError, match="1000"):
        EnvConfig(image_size_px=1000)
    with pytest.raises(ValueError, match=r"7\.0"):
        EnvConfig(fps_hz=7.0)
    with pytest.raises(ValueError, match="'juggle'"):
        EnvConfig(task_families=("juggle",))


def test_projection_finds_cube_colour(env: TabletopEnv) -> None:
    """The exported intrinsics/extrinsics project a cube centre onto pixels of its colour."""
    env.reset(4)
    size = 128
    image = env.render(size)
    for color in env.scene.cubes:
        top = env.object_position(color) + np.array([0, 0, sc.CUBE_HALF_M])
        u, v = sc.project_points(top, size, env.camera_extrinsics())[0]
        patch = image[int(v) - 1 : int(v) + 2, int(u) - 1 : int(u) + 2].reshape(-1, 3)
        want = np.array(sc.PALETTE_RGB[color], float)
        # Shading changes brightness, not hue: compare normalised colours.
        got = patch.mean(axis=0)
        cos = got @ want / (np.linalg.norm(got) * np.linalg.norm(want))
        assert cos > 0.97, (color, got, want)
    k = sc.camera_intrinsics(size)
    assert k[0, 0] == pytest.approx(k[1, 1])
    assert k[0, 2] == size / 2


def test_naming_the_drawn_family_gives_the_same_episode(env: TabletopEnv) -> None:
    env.reset(9)
    drawn = env.task
    scene = env.scene
    env.reset(9, task_family=drawn.family)
    assert env.task.prompt == drawn.prompt
    assert env.scene.cube_poses == scene.cube_poses
