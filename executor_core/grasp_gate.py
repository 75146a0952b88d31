"""The grasp gate: no closing of the jaws while the gripper is high above the table.

An imagined video can close the gripper before the arm has come down (in simulation the
bringup stack's failed pick-places first shut the jaws a median 6 cm above the cube,
``checkpoints/executor_sim/results/grasp_miss/``). The gate reads each trajectory point
about to be sent: when the commanded gripper goes from open (at or above ``closing_rad``)
to closing while that point's effector is more than ``max_close_height_m`` above the
table, the point keeps the last open command instead. The arm's joints are never changed,
and a later point that closes low enough closes as commanded. Jaws already closed (e.g.
around a lifted cube) are never opened: only the open-to-closing step is held.

The effector height comes from the caller (forward kinematics of the joint vector, e.g.
``calibration.kinematics.ArmKinematics.effector_height_m``), so this module stays free of
any robot model. The state across trajectories is the last gripper command of the goal
(:class:`GateState`), started from the measured gripper at the goal's first observation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from executor_core.types import JointTrajectory

logger = logging.getLogger(__name__)

EffectorHeight = Callable[[np.ndarray], float]  # (J,) joint vector, rad -> metres above table


@dataclass(frozen=True)
class GraspGateConfig:
    max_close_height_m: float  # a closing above this effector height is held open
    closing_rad: float = 0.3  # gripper commands below this close the jaws
    gripper_joint: str = "gripper"
    # Also hold while the effector measured when the trajectory was computed is above the
    # limit: the arm lags its targets on the way down, so a point commanded low can close
    # the jaws while they are still centimetres up. Closed loop (a trajectory per chunk)
    # only: an open-loop plan is computed once, from the start pose.
    measured: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_close_height_m) and self.max_close_height_m > 0):
            raise ValueError(f"max_close_height_m must be > 0, got {self.max_close_height_m!r}")
        if not math.isfinite(self.closing_rad):
            raise ValueError(f"closing_rad must be finite, got {self.closing_rad!r}")
        if not self.gripper_joint:
            raise ValueError("gripper_joint must name the gripper joint")


@dataclass
class GateState:
    """One goal's gate: the last gripper command sent, and how many points were held."""

    last_command_rad: float
    held_points: int = 0


class GraspGate:
    """Holds a trajectory's high closings open (module docstring); no state of its own."""

    def __init__(
        self,
        config: GraspGateConfig,
        effector_height_m: EffectorHeight,
        joint_names: tuple[str, ...],
    ) -> None:
        if config.gripper_joint not in joint_names:
            raise ValueError(
                f"gripper_joint {config.gripper_joint!r} is not one of the robot's joints "
                f"{list(joint_names)}"
            )
        self.config, self.effector_height_m = config, effector_height_m
        self.joint_names = joint_names
        self.gripper_index = joint_names.index(config.gripper_joint)

    def start(self, joint_positions_rad: np.ndarray) -> GateState:
        """A goal's state from the measured joints: open jaws count as an open command."""
        return GateState(float(np.asarray(joint_positions_rad)[self.gripper_index]))

    def apply(
        self,
        trajectory: JointTrajectory,
        state: GateState,
        measured_rad: np.ndarray | None = None,  # (J,) when the trajectory was computed
    ) -> JointTrajectory:
        """The trajectory with its high closings held open; ``state`` moves to its end."""
        if tuple(trajectory.joint_names) != self.joint_names:
            raise ValueError(
                f"trajectory joints {list(trajectory.joint_names)} are not the robot's "
                f"{list(self.joint_names)}"
            )
        if self.config.measured and measured_rad is None:
            raise ValueError("the grasp gate's measured mode needs the measured joints")
        limit_m = self.config.max_close_height_m
        measured_high = self.config.measured and self.effector_height_m(measured_rad) > limit_m
        positions = trajectory.positions_rad.copy()
        g, closing = self.gripper_index, self.config.closing_rad
        held_rows: list[int] = []
        for i, row in enumerate(positions):
            command = float(row[g])
            opening_to_closing = state.last_command_rad >= closing > command
            if opening_to_closing and (measured_high or self.effector_height_m(row) > limit_m):
                row[g] = state.last_command_rad
                held_rows.append(i)
            else:
                state.last_command_rad = command
        if not held_rows:
            return trajectory
        state.held_points += len(held_rows)
        logger.debug("grasp gate: %d closing point(s) held open above the table", len(held_rows))
        derivatives = {}
        for name in ("velocities_rad_s", "accelerations_rad_s2"):
            values = getattr(trajectory, name)
            if values is not None:  # a held gripper stands still at those points
                values = values.copy()
                values[held_rows, g] = 0.0
            derivatives[name] = values
        return replace(trajectory, positions_rad=positions, **derivatives)
