"""LeRobot's real SO-101 code against the Feetech bus test double (a pseudo-terminal
served by a thread, the MuJoCo arm behind it), and the LeRobot arm adapter over it."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dataclasses
import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest
from lerobot.robots.so_follower import SO101Follower, SO101FollowerConfig

from executor_core.robot_description import RobotDescription, default_robot_path
from executor_sim.feetech_bus_double import (
    FeetechBusDoubleProcess,
    lerobot_calibration_for,
    write_lerobot_calibration,
)
from robot_drivers.lerobot_arm import ArmBusError, LeRobotArm, LeRobotArmConfig

ROBOT_ID = "test_arm"
HOMING = {"shoulder_pan": -120, "elbow_flex": 300, "gripper": 45}
TICK_RAD = 2 * math.pi / 4095


def calibrated_description() -> RobotDescription:
    """The SO-101 with a joint-space calibration that is not the identity."""
    base = RobotDescription.from_yaml(default_robot_path())
    changes = {"shoulder_lift": (-1, 0.2), "wrist_flex": (1, -0.1)}
    joints = tuple(
        dataclasses.replace(j, direction=changes[j.name][0], offset_rad=changes[j.name][1])
        if j.name in changes
        else j
        for j in base.joints
    )
    return dataclasses.replace(base, joints=joints)


@pytest.fixture
def rig(tmp_path: Path):
    """(bus double, description, calibration dir) with LeRobot's calibration file written."""
    description = calibrated_description()
    calibration = lerobot_calibration_for(description, HOMING)
    write_lerobot_calibration(calibration, tmp_path / f"{ROBOT_ID}.json")
    bus = FeetechBusDoubleProcess(description, calibration)
    yield bus, description, tmp_path
    bus.close()


def settle(bus: FeetechBusDoubleProcess, seconds: float = 1.5) -> None:
    time.sleep(seconds)


def test_so101_follower_runs_unchanged_against_the_double(rig) -> None:
    bus, _, cal_dir = rig
    robot = SO101Follower(SO101FollowerConfig(port=bus.port, id=ROBOT_ID, calibration_dir=cal_dir))
    robot.connect(calibrate=False)
    assert robot.is_calibrated  # the motors hold the file's homing offsets and ranges
    assert all(bus.torque_enabled().values())
    # configure() wrote LeRobot's settings into the motors
    assert bus.register("gripper", "Max_Torque_Limit") == 500
    assert bus.register("elbow_flex", "Return_Delay_Time") == 0
    assert bus.register("wrist_roll", "P_Coefficient") == 16
    obs = robot.get_observation()
    assert set(obs) == {f"{m}.pos" for m in robot.bus.motors}
    # home pose: shoulder_pan 0 rad -> 0 degrees; gripper 0 rad -> the middle of 0..100
    assert obs["shoulder_pan.pos"] == pytest.approx(0.0, abs=0.2)
    assert obs["gripper.pos"] == pytest.approx(50.0, abs=0.2)
    action = {**obs, "shoulder_pan.pos": 20.0, "elbow_flex.pos": obs["elbow_flex.pos"] - 10.0}
    sent = robot.send_action(action)
    assert sent["shoulder_pan.pos"] == 20.0
    settle(bus)
    moved = robot.get_observation()
    assert moved["shoulder_pan.pos"] == pytest.approx(20.0, abs=0.5)
    assert moved["elbow_flex.pos"] == pytest.approx(obs["elbow_flex.pos"] - 10.0, abs=0.5)
    assert bus.joint_positions_rad()[0] == pytest.approx(math.radians(20.0), abs=0.01)
    robot.disconnect()  # disable_torque_on_disconnect defaults to True
    assert not any(bus.torque_enabled().values())


def test_so101_follower_caps_steps_with_max_relative_target(rig) -> None:
    bus, _, cal_dir = rig
    config = SO101FollowerConfig(
        port=bus.port, id=ROBOT_ID, calibration_dir=cal_dir, max_relative_target=5.0
    )
    robot = SO101Follower(config)
    robot.connect(calibrate=False)
    obs = robot.get_observation()
    sent = robot.send_action({**obs, "shoulder_pan.pos": 40.0})
    assert sent["shoulder_pan.pos"] == pytest.approx(obs["shoulder_pan.pos"] + 5.0)
    settle(bus, 1.0)
    assert robot.get_observation()["shoulder_pan.pos"] == pytest.approx(5.0, abs=0.5)
    robot.disconnect()


def make_arm(bus, description, cal_dir, **overrides) -> LeRobotArm:
    config = LeRobotArmConfig(
        port=bus.port, robot_id=ROBOT_ID, calibration_dir=str(cal_dir), **overrides
    )
    arm = LeRobotArm(config, description)
    arm.connect()
    return arm


@pytest.mark.parametrize("options", [{}, {"use_degrees": False}], ids=["degrees", "m100_100"])
def test_adapter_reads_model_radians_through_both_calibrations(rig, options) -> None:
    bus, description, cal_dir = rig
    arm = make_arm(bus, description, cal_dir, robot_options=options)
    q = arm.read_positions_rad()
    truth = bus.joint_positions_rad()
    np.testing.assert_allclose(q, truth, atol=2 * TICK_RAD)
    np.testing.assert_allclose(q, description.home_rad, atol=0.01)
    arm.disconnect()


def test_adapter_moves_the_arm_and_reports_what_lerobot_sent(rig) -> None:
    bus, description, cal_dir = rig
    arm = make_arm(bus, description, cal_dir)
    goal = description.home_rad + np.array([0.3, -0.2, 0.15, -0.25, 0.4, 0.5])
    sent = arm.send_positions_rad(goal)
    np.testing.assert_allclose(sent, goal, atol=1e-9)  # no cap: sent as asked
    settle(bus)
    np.testing.assert_allclose(arm.read_positions_rad(), goal, atol=0.02)
    np.testing.assert_allclose(bus.joint_positions_rad(), goal, atol=0.02)
    arm.disconnect()


def test_adapter_respects_lerobots_max_relative_target(rig) -> None:
    bus, description, cal_dir = rig
    arm = make_arm(bus, description, cal_dir, max_relative_target=5.0)  # degrees
    start = arm.read_positions_rad()
    sent = arm.send_positions_rad(start + 0.5)
    np.testing.assert_allclose(np.abs(sent[:5] - start[:5]), math.radians(5.0), atol=2e-3)
    arm.disconnect()


@pytest.mark.parametrize("policy", ["hold", "torque_off"])
def test_disconnect_follows_the_torque_policy(rig, policy) -> None:
    bus, description, cal_dir = rig
    arm = make_arm(bus, description, cal_dir, torque_policy=policy)
    arm.send_positions_rad(description.home_rad + 0.2)
    settle(bus, 0.3)
    arm.disconnect()
    torque = bus.torque_enabled()
    if policy == "hold":
        assert all(torque.values())
        held = bus.joint_positions_rad()
        settle(bus, 1.0)  # the goal became where the arm was: it stays there
        np.testing.assert_allclose(bus.joint_positions_rad(), held, atol=0.02)
    else:
        assert not any(torque.values())


def test_loss_of_the_bus_names_the_silent_motor(rig) -> None:
    bus, description, cal_dir = rig
    arm = make_arm(bus, description, cal_dir)
    bus.unplug(["wrist_flex"])
    with pytest.raises(ArmBusError, match=r"'wrist_flex' \(id 4\)") as info:
        arm.read_positions_rad()
    assert "shoulder_pan" not in str(info.value)
    bus.unplug()
    # a sync write expects no answer (nothing to notice); the next read names every motor
    arm.send_positions_rad(description.home_rad)
    with pytest.raises(ArmBusError, match=r"'shoulder_pan' .*'gripper'"):
        arm.read_positions_rad()
    arm.disconnect()  # does not hang or raise on a dead bus


def test_missing_and_mismatched_calibration_are_errors_naming_the_file(rig, tmp_path) -> None:
    bus, description, _ = rig
    empty = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(empty / f"{ROBOT_ID}.json")):
        make_arm(bus, description, empty)
    other = lerobot_calibration_for(description)  # homing offsets the motors do not hold
    write_lerobot_calibration(other, tmp_path / "other" / f"{ROBOT_ID}.json")
    with pytest.raises(ValueError, match="do not hold the calibration"):
        make_arm(bus, description, tmp_path / "other")


def test_a_silent_bus_is_asked_again_after_the_delay_then_named(rig) -> None:
    bus, description, cal_dir = rig
    bus.unplug()  # no motor answers the pings
    config = LeRobotArmConfig(
        port=bus.port,
        robot_id=ROBOT_ID,
        calibration_dir=str(cal_dir),
        connect_retries=2,
        connect_retry_delay_s=0.4,
    )
    arm = LeRobotArm(config, description)
    start = time.monotonic()
    with pytest.raises(ArmBusError, match=f"could not connect to the arm on {bus.port}"):
        arm.connect()
    assert time.monotonic() - start >= 2 * 0.4  # two waits between three attempts
    bus.replug()
    arm.connect()  # the same adapter connects once the bus answers
    assert arm.is_connected
    arm.disconnect()


def test_bad_config_values_are_named() -> None:
    with pytest.raises(ValueError, match=r"connect_retry_delay_s.*-1"):
        LeRobotArmConfig(port="/dev/x", connect_retry_delay_s=-1.0)
    with pytest.raises(ValueError, match="'sideways'"):
        LeRobotArmConfig(port="/dev/x", torque_policy="sideways")
    with pytest.raises(ValueError, match="port"):
        LeRobotArmConfig(port="")
    with pytest.raises(ValueError, match="'no_such_robot'"):
        LeRobotArm(
            LeRobotArmConfig(port="/dev/x", robot_type="no_such_robot"),
            calibrated_description(),
        )


def test_another_robot_type_is_a_config_change(rig) -> None:
    bus, description, cal_dir = rig
    arm = make_arm(bus, description, cal_dir, robot_type="so100_follower")
    np.testing.assert_allclose(arm.read_positions_rad(), bus.joint_positions_rad(), atol=0.01)
    arm.disconnect()


def test_koch_follower_is_built_by_its_type(tmp_path) -> None:
    config = LeRobotArmConfig(
        robot_type="koch_follower", port="/dev/ttyACM0", calibration_dir=str(tmp_path)
    )
    if importlib.util.find_spec("dynamixel_sdk") is None:  # LeRobot's koch extra
        with pytest.raises(ValueError, match=r"'koch_follower': .*dynamixel-sdk"):
            LeRobotArm(config, calibrated_description())
        return
    arm = LeRobotArm(config, calibrated_description())  # Dynamixel bus, same joints
    assert arm.motor_names == calibrated_description().joint_names
