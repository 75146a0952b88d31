"""Top-down inverse kinematics for the SO-101 grasp point.

The SO-101 has five arm joints: pan, then three parallel pitch joints, then the roll.
A top-down grasp fixes the grasp point (3), points the fingers straight down (2) and
sets the jaw yaw (1): six numbers for five joints, but the pan/pitch chain is planar,
so "fingers down" costs a single constraint there and the system is square. We solve it
with damped least squares on a scratch MjData (never the live simulation).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import mujoco
import numpy as np

logger = logging.getLogger(__name__)

ARM_JOINTS: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
)
DOWN = np.array([0.0, 0.0, -1.0])


@dataclass(frozen=True)
class IKResult:
    q_rad: np.ndarray  # (5,) arm joints
    position_error_m: float
    axis_error: float  # |fingers - down|
    yaw_error: float  # |jaw opening direction - wanted|, horizontal unit vectors

    @property
    def ok(self) -> bool:
        return self.position_error_m < 2e-3 and self.axis_error < 0.05 and self.yaw_error < 0.05


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


class TopDownIK:
    """IK for the point between the fingertip pads, fingers pointing down."""

    def __init__(
        self,
        model: mujoco.MjModel,
        lower_rad: np.ndarray | None = None,
        upper_rad: np.ndarray | None = None,
        grasp_opening_rad: float = 0.33,
        fixed_pad_to_grasp_m: float | None = None,
    ) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self._qadr = np.array([model.jnt_qposadr[model.joint(n).id] for n in ARM_JOINTS])
        self._dofs = np.array([model.jnt_dofadr[model.joint(n).id] for n in ARM_JOINTS])
        self._grip_qadr = model.jnt_qposadr[model.joint("gripper").id]
        self._lo = model.jnt_range[[model.joint(n).id for n in ARM_JOINTS], 0]
        self._hi = model.jnt_range[[model.joint(n).id for n in ARM_JOINTS], 1]
        # The robot description may be tighter than the MJCF (the safety layer's limits).
        if lower_rad is not None:
            self._lo = np.maximum(self._lo, np.asarray(lower_rad, float)[:5])
        if upper_rad is not None:
            self._hi = np.minimum(self._hi, np.asarray(upper_rad, float)[:5])
        self._body = model.body("gripper").id
        self._site = model.site("gripperframe").id
        fixed = model.geom("fixed_jaw_pad").id
        moving = model.geom("moving_jaw_pad").id
        # The grasp point (midway between the pads when closed on a cube) and the jaw
        # opening direction, both fixed in the gripper body frame.
        self.data.qpos[self._grip_qadr] = grasp_opening_rad
        mujoco.mj_kinematics(model, self.data)
        rot = self.data.xmat[self._body].reshape(3, 3)
        origin = self.data.xpos[self._body]
        a, b = self.data.geom_xpos[fixed].copy(), self.data.geom_xpos[moving].copy()
        self.grasp_offset = rot.T @ ((a + b) / 2 - origin)  # (3,) in gripper frame
        self.finger_local = rot.T @ self.data.site_xmat[self._site].reshape(3, 3)[:, 0]
        # The pads are not quite square to the fingers; keep the part of the opening
        # direction that is horizontal when the fingers point down.
        opening = rot.T @ (b - a)
        opening -= (opening @ self.finger_local) * self.finger_local
        self.opening_local = opening / np.linalg.norm(opening)
        if fixed_pad_to_grasp_m is not None:
            # Grasp point at a set distance from the fixed pad: the fixed pad then clears
            # the cube by a margin and the moving jaw closes the gap.
            fixed_local = rot.T @ (a - origin)
            self.grasp_offset = fixed_local + fixed_pad_to_grasp_m * self.opening_local
        # Pushing uses the closed jaw: the pad midpoint with the gripper shut.
        self.data.qpos[self._grip_qadr] = model.jnt_range[model.joint("gripper").id, 0]
        mujoco.mj_kinematics(model, self.data)
        closed = (self.data.geom_xpos[fixed] + self.data.geom_xpos[moving]) / 2
        self.pusher_offset = rot.T @ (closed - self.data.xpos[self._body])

    def forward(
        self, q_arm: np.ndarray, pusher: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grasp point (or closed-jaw pusher point) (3,), finger axis (3,) and opening
        direction (3,) at ``q_arm``."""
        self.data.qpos[self._qadr] = q_arm
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        rot = self.data.xmat[self._body].reshape(3, 3)
        offset = self.pusher_offset if pusher else self.grasp_offset
        point = self.data.xpos[self._body] + rot @ offset
        return point, rot @ self.finger_local, rot @ self.opening_local

    def solve(
        self,
        target_m: np.ndarray,
        yaw_rad: float,
        q_init: np.ndarray,
        iters: int = 100,
        pusher: bool = False,
        axis_weight: float = 0.5,
    ) -> IKResult:
        """Joint angles (5,) putting the grasp point at ``target_m`` with fingers down and
        the jaws opening along ``yaw_rad`` (mod pi: both jaws are interchangeable).
        A small ``axis_weight`` lets the fingers tilt to reach further (pushing)."""
        q = np.clip(np.asarray(q_init, float).copy(), self._lo, self._hi)
        want = np.array([math.cos(yaw_rad), math.sin(yaw_rad), 0.0])
        jacp = np.zeros((3, self.model.nv))
        jacr = np.zeros((3, self.model.nv))
        for _ in range(iters):
            point, finger, opening = self.forward(q, pusher)
            if opening @ want < 0:  # jaws are symmetric for the task: flip the goal
                want = -want
            err = np.concatenate(
                [target_m - point, axis_weight * (DOWN - finger), 0.3 * (want - opening)]
            )
            if np.linalg.norm(err) < 1e-5:
                break
            mujoco.mj_jac(self.model, self.data, jacp, jacr, point, self._body)
            jp, jr = jacp[:, self._dofs], jacr[:, self._dofs]
            jac = np.vstack([jp, axis_weight * (-_skew(finger) @ jr), 0.3 * (-_skew(opening) @ jr)])
            step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(9), err)
            q = np.clip(q + np.clip(step, -0.3, 0.3), self._lo, self._hi)
        point, finger, opening = self.forward(q, pusher)
        if opening @ want < 0:
            want = -want
        return IKResult(
            q,
            float(np.linalg.norm(target_m - point)),
            float(np.linalg.norm(DOWN - finger)),
            float(np.linalg.norm(want - opening)),
        )
