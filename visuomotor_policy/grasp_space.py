"""A grasp-space action for the SO-101: where the gripper goes, not how the joints bend.

A policy trained on joint targets must learn the arm's inverse kinematics from its
demonstrations: with 10 demos per task family that is a handful of samples of a
nonlinear map, and the layouts it has not seen fall between them. In grasp space the
target of a grasp or a push is the object's own position plus a fixed offset, so a policy
whose vision locates the objects has a near-linear map to learn.

The six joint targets (pan, lift, elbow, wrist flex, wrist roll, gripper) map one to one
onto six grasp-space numbers:

- ``x_m, y_m, z_m``: the grasp point (between the open jaw pads, fixed in the gripper frame;
  :class:`executor_sim.kinematics.TopDownIK`), by forward kinematics;
- ``pitch_rad``: lift + elbow + wrist flex. The three axes are parallel, so this is the
  fingers' angle in the arm's vertical plane, up to a constant;
- ``roll_rad`` and ``gripper_rad``: the joints themselves.

:meth:`GraspSpace.to_joints` inverts it: given the pitch and the roll, the pan, lift and
elbow that put the grasp point at (x, y, z) are three equations in three unknowns, solved
by Newton's method seeded with the previous row's joints (the robot's for the first row),
with wrist flex = pitch - lift - elbow. It round-trips every reachable configuration; a
target out of reach is an error that names it, never a silent clip.

``grasp_relative`` is the same space with x, y, z measured from the grasp point of the
joints the arm had when the chunk was predicted (the observation's state): "2 cm ahead and
8 cm down" rather than "at (0.21, -0.05, 0.02)". A policy that reads the objects in the
hand's frame (``object_features``, ``frame="gripper"``) then has nothing left that names a
place on the table. :func:`relative_to` and :func:`absolute_from` convert a chunk.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mujoco
import numpy as np

from executor_sim import scene as sc
from executor_sim.kinematics import ARM_JOINTS, TopDownIK

logger = logging.getLogger(__name__)

ACTION_SPACE_FILE = "executor_action_space.json"  # beside a checkpoint's config.json
SPACES = ("joints", "grasp", "grasp_relative")
GRASP_NAMES = ("x_m", "y_m", "z_m", "pitch_rad", "roll_rad", "gripper_rad")
RELATIVE_NAMES = ("dx_m", "dy_m", "dz_m", "pitch_rad", "roll_rad", "gripper_rad")
JOINTS = (*ARM_JOINTS, "gripper")  # the order of the six joint targets
PAN, LIFT, ELBOW, WRIST_FLEX, ROLL, GRIPPER = range(6)


class GraspSpace:
    """Joint targets (N, 6) <-> grasp-space targets (N, 6) for the SO-101."""

    def __init__(self, model: mujoco.MjModel | None = None, tolerance_m: float = 1e-3) -> None:
        self.model = model or sc.build_model(sc.SceneSpec())
        self._ik = TopDownIK(self.model)
        ranges = self.model.jnt_range[[self.model.joint(n).id for n in ARM_JOINTS]]
        self._lo, self._hi = ranges[:, 0].copy(), ranges[:, 1].copy()
        self.tolerance_m = tolerance_m

    def point(self, q_arm: np.ndarray) -> np.ndarray:
        """The grasp point (3,) of the five arm joints."""
        return self._ik.forward(np.asarray(q_arm, float))[0].copy()

    def points(self, joints_rad: np.ndarray) -> np.ndarray:
        """(..., 6) joints -> (..., 3) grasp points."""
        q = np.asarray(joints_rad, np.float64)
        flat = q.reshape(-1, q.shape[-1])
        out = np.stack([self.point(row[:5]) for row in flat]) if len(flat) else np.empty((0, 3))
        return out.reshape(*q.shape[:-1], 3)

    def relative_to(self, grasp: np.ndarray, start_rad: np.ndarray) -> np.ndarray:
        """(..., T, 6) grasp-space targets, (..., 6) starting joints -> the targets with x, y,
        z measured from the starting grasp point (``grasp_relative``)."""
        out = np.array(grasp, np.float32, copy=True)
        out[..., :3] -= self.points(start_rad)[..., None, :].astype(np.float32)
        return out

    def absolute_from(self, relative: np.ndarray, start_rad: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`relative_to` for one chunk: (T, 6), (6,) -> (T, 6)."""
        out = np.array(relative, np.float32, copy=True)
        out[:, :3] += self.point(np.asarray(start_rad, np.float64)[:5]).astype(np.float32)
        return out

    def to_grasp(self, joints_rad: np.ndarray) -> np.ndarray:
        """(..., 6) joint targets -> (..., 6) grasp-space targets."""
        q = np.asarray(joints_rad, np.float64)
        flat = q.reshape(-1, 6)
        out = np.empty_like(flat)
        for i, row in enumerate(flat):
            out[i, :3] = self.point(row[:5])
            out[i, 3] = row[LIFT] + row[ELBOW] + row[WRIST_FLEX]
            out[i, 4:] = row[ROLL], row[GRIPPER]
        return out.reshape(q.shape).astype(np.float32)

    def to_joints(
        self, grasp: np.ndarray, seed_rad: np.ndarray, strict: bool = True, iters: int = 30
    ) -> np.ndarray:
        """(N, 6) grasp-space targets -> (N, 6) joint targets, each row's solve seeded with the
        previous row's joints (row 0 with ``seed_rad``).

        ``strict``: a target the arm cannot reach within ``tolerance_m`` (or only past its
        joint limits) is an error. Not strict (a policy's predictions at run time): the
        closest joints are returned, with a warning giving the miss, and the joint limits are
        left to the goal runner's limit check, as for a joint-space policy."""
        rows = np.asarray(grasp, np.float64).reshape(-1, 6)
        q = np.asarray(seed_rad, np.float64).reshape(6).copy()
        out = np.empty_like(rows)
        for i, target in enumerate(rows):
            q, miss = self._solve(target, q, iters)
            outside = (q[:5] < self._lo - 1e-6) | (q[:5] > self._hi + 1e-6)
            if miss > self.tolerance_m or (strict and outside.any()):
                message = (
                    f"grasp target {np.round(target, 4).tolist()} is out of the arm's reach: "
                    f"the closest joints {np.round(q, 4).tolist()} miss it by "
                    f"{miss * 1000:.1f} mm, joints past their limits: "
                    f"{np.flatnonzero(outside).tolist()}"
                )
                if strict:
                    raise ValueError(message)
                logger.warning(message)
            out[i] = q
        return out.astype(np.float32)

    def _solve(self, target: np.ndarray, seed: np.ndarray, iters: int) -> tuple[np.ndarray, float]:
        """Newton's method on pan, lift and elbow; returns the joints and the miss (m)."""
        q = seed.copy()
        q[ROLL], q[GRIPPER] = target[4], target[5]

        def arm(v: np.ndarray) -> np.ndarray:  # pan, lift, elbow -> the five arm joints
            return np.array([v[0], v[1], v[2], target[3] - v[1] - v[2], target[4]])

        v = q[:3].copy()
        eps = 1e-6
        for _ in range(iters):
            base = self.point(arm(v))
            err = target[:3] - base
            if np.linalg.norm(err) < 1e-7:
                break
            jac = np.stack(
                [(self.point(arm(v + eps * np.eye(3)[k])) - base) / eps for k in range(3)], 1
            )
            step = np.linalg.solve(jac.T @ jac + 1e-8 * np.eye(3), jac.T @ err)
            v = v + np.clip(step, -0.3, 0.3)
        q[:5] = arm(v)
        return q, float(np.linalg.norm(target[:3] - self.point(q[:5])))


def write_action_space(folder: str | Path, space: str) -> None:
    """Declare a checkpoint's action space beside its ``config.json``."""
    if space not in SPACES:
        raise ValueError(f"action space must be one of {SPACES}, got {space!r}")
    payload: dict[str, object] = {"action_space": space}
    if space != "joints":
        payload["names"] = list(GRASP_NAMES if space == "grasp" else RELATIVE_NAMES)
    (Path(folder) / ACTION_SPACE_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def read_action_space(folder: str | Path) -> str:
    """A checkpoint's action space: "joints" unless it declares another."""
    path = Path(folder) / ACTION_SPACE_FILE
    if not path.is_file():
        return "joints"
    space = json.loads(path.read_text()).get("action_space")
    if space not in SPACES:
        raise ValueError(f"{path}: action_space must be one of {SPACES}, got {space!r}")
    return space
