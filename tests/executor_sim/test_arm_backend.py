"""The simulated arm behind sim_arm_node, without ROS: setpoints move the joints, time is
carried across short advances, the camera renders, the tabletop task answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from executor_core.robot_description import RobotDescription, default_robot_path
from executor_sim.arm_backend import MujocoSo101Backend


@pytest.fixture(scope="module")
def robot() -> RobotDescription:
    return RobotDescription.from_yaml(default_robot_path())


@pytest.fixture(scope="module")
def tabletop(robot: RobotDescription) -> MujocoSo101Backend:
    backend = MujocoSo101Backend(robot.joint_names, image_size_px=32, scene_seed=11)
    yield backend
    backend.close()


def test_setpoints_move_the_joints_and_short_steps_add_up(
    tabletop: MujocoSo101Backend, robot: RobotDescription
) -> None:
    target = robot.home_rad + np.array([0.3, 0, 0, 0, 0, 0])
    tabletop.set_targets(target)
    timestep_s = tabletop.model.opt.timestep
    start_s = float(tabletop.data.time)
    for _ in range(100):  # a third of a physics step each: whole steps once carried over
        tabletop.advance(timestep_s / 3)
    assert float(tabletop.data.time) - start_s == pytest.approx(33 * timestep_s)
    tabletop.advance(1.5)
    np.testing.assert_allclose(tabletop.joint_positions_rad(), target, atol=0.05)
    assert tabletop.joint_velocities_rad_s().shape == (6,)


def test_camera_renders_with_a_centred_pinhole(tabletop: MujocoSo101Backend) -> None:
    tabletop.update_scene()
    image = tabletop.render()
    assert image.shape == (32, 32, 3)
    assert image.dtype == np.uint8
    k = tabletop.camera_matrix()
    assert (k[0, 2], k[1, 2]) == (16.0, 16.0)
    fovy_deg = tabletop.model.cam_fovy[tabletop.model.camera(tabletop.camera).id]
    assert k[0, 0] == k[1, 1] == pytest.approx(16.0 / math.tan(math.radians(fovy_deg) / 2))


def test_tabletop_scene_knows_its_task(tabletop: MujocoSo101Backend) -> None:
    assert tabletop.task_prompt == "put the red cube in the bowl"  # scene seed 11
    assert tabletop.task_success() is False


def test_lerobot_pick_scene_has_no_task(robot: RobotDescription) -> None:
    backend = MujocoSo101Backend(robot.joint_names, scene="lerobot_pick")
    assert backend.task_prompt == ""
    assert backend.task_success() is None
    assert backend.joint_positions_rad().shape == (6,)


def test_unknown_scene_and_size_are_refused(robot: RobotDescription) -> None:
    with pytest.raises(ValueError, match="'kitchen'"):
        MujocoSo101Backend(robot.joint_names, scene="kitchen")
    with pytest.raises(ValueError, match="image_size_px"):
        MujocoSo101Backend(robot.joint_names, image_size_px=8, scene="lerobot_pick")
