"""Where the jaws are when they close: the grasp point against the task's cube.

A closing is a control step whose commanded gripper goes below ``closing_rad`` from at or
above it (the first command counts if the measured jaws are open; holding a cube keeps the
measured jaws open around it, so they cannot tell). At each closing the grasp point
(between the pads, the expert's kinematics ``TopDownIK.forward``) is compared with the
centre of the cube the task moves: ``xy_mm``, the horizontal miss, and ``z_mm``, the height
above the centre. The first closing is the grasp; later ones are re-grasps, or the jaws
shutting after a release (the expert does that on its way home). The scripted expert's
grasp misses the centre by under a millimetre. Push tasks, which never close on the cube,
record nothing.

``nearest_open`` is how near the grasp point came to the cube's centre while the jaws were
commanded open (the approach, not the carrying): ``distance_mm`` and, at that step,
``xy_mm`` and ``z_mm``. It tells an arm that never came down to the cube from one that came
down and closed at the wrong moment.
"""

from __future__ import annotations

import numpy as np

from executor_sim.env import TabletopEnv
from executor_sim.expert import FIXED_PAD_TO_GRASP_M
from executor_sim.kinematics import TopDownIK
from executor_sim.tasks import Task

CLOSING_RAD = 0.3  # between the expert's open (0.7) and shut (-0.15) commands
GRASP_FAMILIES = ("pick_place", "stack")


class GraspProbe:
    """Call :meth:`before_step` with each control step's target, before the step. Only grasp
    tasks build the kinematics; a push task's probe does nothing (``active`` is false)."""

    def __init__(self, env: TabletopEnv, task: Task, closing_rad: float = CLOSING_RAD) -> None:
        self.env, self.task, self.closing_rad = env, task, closing_rad
        self.attempts: list[dict[str, float]] = []
        self.nearest_open: dict[str, float] | None = None
        self.active = task.family in GRASP_FAMILIES
        self._last_command_rad: float | None = None
        self._ik = (
            TopDownIK(
                env.model, env.lower_rad, env.upper_rad, fixed_pad_to_grasp_m=FIXED_PAD_TO_GRASP_M
            )
            if self.active
            else None
        )

    def before_step(self, target_rad: np.ndarray) -> None:
        if self._ik is None:
            return
        command = float(target_rad[5])
        before = self._last_command_rad
        if before is None:  # the first command: the measured jaws say whether they are open
            before = float(self.env.joint_positions_rad()[5])
        self._last_command_rad = command
        closing = before >= self.closing_rad > command
        if not closing and command < self.closing_rad:
            return  # jaws commanded shut and staying so: nothing to record
        miss = self._miss()
        if closing:
            self.attempts.append(miss)
            return
        distance_mm = float(np.hypot(miss["xy_mm"], miss["z_mm"]))
        if self.nearest_open is None or distance_mm < self.nearest_open["distance_mm"]:
            self.nearest_open = {"distance_mm": distance_mm, **miss}

    def _miss(self) -> dict[str, float]:
        """The grasp point now against the cube's centre: horizontal and height, in mm."""
        point, _, _ = self._ik.forward(self.env.joint_positions_rad()[:5], False)
        miss_m = np.asarray(point, np.float64) - self.env.object_position(self.task.obj)
        return {
            "xy_mm": float(1000.0 * np.linalg.norm(miss_m[:2])),
            "z_mm": float(1000.0 * miss_m[2]),
        }
