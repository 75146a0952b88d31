from __future__ import annotations

import mujoco
import numpy as np
import pytest

from calibration.kinematics import ArmKinematics, default_mjcf_path
from executor_core.robot_description import RobotDescription, default_robot_path


@pytest.fixture(scope="module")
def kinematics() -> ArmKinematics:
    return ArmKinematics(RobotDescription.from_yaml(default_robot_path()))


def test_matches_the_full_mujoco_model(kinematics) -> None:
    # The kinematics model drops meshes; frames must equal those of the full MJCF.
    model = mujoco.MjModel.from_xml_path(str(default_mjcf_path()))
    data = mujoco.MjData(model)
    q = np.array([0.3, 0.2, -0.3, 0.5, 1.0, 0.2])
    for i, name in enumerate(kinematics.description.joint_names):
        joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        data.qpos[model.jnt_qposadr[joint]] = q[i]
    mujoco.mj_kinematics(model, data)
    gripper = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "gripper")
    base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "base")
    expected = data.xmat[base].reshape(3, 3).T @ (data.xpos[gripper] - data.xpos[base])
    np.testing.assert_allclose(kinematics.base_from_effector(q)[:3, 3], expected, atol=1e-12)


def test_pan_rotates_the_effector_about_the_vertical(kinematics) -> None:
    q = np.array([0.0, 0.4, -0.6, 0.3, 0.2, 0.0])
    p0 = kinematics.base_from_effector(q)[:3, 3]
    q[0] = 0.5
    p1 = kinematics.base_from_effector(q)[:3, 3]
    # The pan axis is vertical through the shoulder: height kept, rotation of 0.5 rad.
    assert p1[2] == pytest.approx(p0[2], abs=1e-9)
    axis_xy = np.array([0.0388353, 0.0])  # shoulder position in the base body (MJCF)
    a0 = np.arctan2(*(p0[:2] - axis_xy)[::-1])
    a1 = np.arctan2(*(p1[:2] - axis_xy)[::-1])
    assert abs(abs(a1 - a0) - 0.5) < 1e-6


def test_pose_is_rigid_and_site_frame_is_offset(kinematics) -> None:
    q = np.array([0.2, -0.3, 0.5, 0.1, -0.7, 0.3])
    pose = kinematics.base_from_effector(q)
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)
    site = ArmKinematics(kinematics.description, effector_frame="gripperframe")
    assert site.ros_effector_frame == "gripper_frame_link"
    offset = np.linalg.norm(site.base_from_effector(q)[:3, 3] - pose[:3, 3])
    assert offset == pytest.approx(np.linalg.norm([-0.0079, -0.000218121, -0.0981274]), abs=1e-6)


def test_bad_inputs_name_the_problem(kinematics) -> None:
    with pytest.raises(ValueError, match=r"degrees.*shoulder_lift=45\.0000 rad"):
        kinematics.base_from_effector(np.array([0.0, 45.0, 0.0, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="expected 6 joint positions"):
        kinematics.base_from_effector(np.zeros(5))
    with pytest.raises(ValueError, match="'tool0' is neither"):
        ArmKinematics(kinematics.description, effector_frame="tool0")


def test_effector_height_is_the_base_frame_z_inside_the_limits(kinematics) -> None:
    q = np.array([0.1, 0.3, -0.2, 0.6, 0.0, 0.4])
    assert kinematics.effector_height_m(q) == kinematics.base_from_effector(q)[2, 3]
    # A command just past a limit reads as the limit itself (no error, no extrapolation).
    past = q.copy()
    past[1] = kinematics.description.upper_rad[1] + 0.04
    at = q.copy()
    at[1] = kinematics.description.upper_rad[1]
    assert kinematics.effector_height_m(past) == kinematics.effector_height_m(at)
