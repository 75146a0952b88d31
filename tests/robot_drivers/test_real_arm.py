"""A real LeRobot arm through the adapter (marker ``hardware``: off by default).

    EXECUTOR_SO101_PORT=/dev/ttyACM0 EXECUTOR_SO101_ID=my_so101 pytest -m hardware \
        tests/robot_drivers/test_real_arm.py

Optional: EXECUTOR_SO101_CALIBRATION_DIR (LeRobot's default otherwise),
EXECUTOR_SO101_ROBOT_TYPE (so101_follower), EXECUTOR_ROBOT_DESCRIPTION (the calibrated
robot description). The arm must rest in a safe pose with room to move 0.05 rad on the
wrist: the test holds, nudges the wrist roll and comes back, with LeRobot's
max_relative_target at 3 degrees per command.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from executor_core.robot_description import RobotDescription, default_robot_path
from robot_drivers.lerobot_arm import LeRobotArm, LeRobotArmConfig

pytestmark = pytest.mark.hardware
PORT = os.environ.get("EXECUTOR_SO101_PORT", "")


@pytest.fixture
def arm():
    if not PORT:
        pytest.skip("set EXECUTOR_SO101_PORT (and EXECUTOR_SO101_ID) to test a real arm")
    description = RobotDescription.from_yaml(
        os.environ.get("EXECUTOR_ROBOT_DESCRIPTION") or default_robot_path()
    )
    config = LeRobotArmConfig(
        robot_type=os.environ.get("EXECUTOR_SO101_ROBOT_TYPE", "so101_follower"),
        port=PORT,
        robot_id=os.environ.get("EXECUTOR_SO101_ID", "executor_arm"),
        calibration_dir=os.environ.get("EXECUTOR_SO101_CALIBRATION_DIR", ""),
        max_relative_target=3.0,
        torque_policy="hold",
    )
    arm = LeRobotArm(config, description)
    arm.connect()
    yield arm, description
    arm.disconnect()


def test_real_arm_reads_within_limits_holds_and_nudges(arm) -> None:
    arm, description = arm
    q = arm.read_positions_rad()
    margin = 0.2  # a calibration a little off still passes; a wrong unit does not
    assert np.all(q > description.lower_rad - margin), q
    assert np.all(q < description.upper_rad + margin), q
    arm.send_positions_rad(q)  # hold: nothing moves
    time.sleep(0.5)
    np.testing.assert_allclose(arm.read_positions_rad(), q, atol=0.03)
    roll = description.joint_names.index("wrist_roll")
    nudged = q.copy()
    nudged[roll] += 0.05
    for _ in range(20):
        arm.send_positions_rad(nudged)
        time.sleep(0.05)
    assert abs(arm.read_positions_rad()[roll] - nudged[roll]) < 0.03
    for _ in range(20):
        arm.send_positions_rad(q)
        time.sleep(0.05)
    np.testing.assert_allclose(arm.read_positions_rad(), q, atol=0.03)
