"""TabletopEnv: the SO-101 tabletop world stepped at the dataset rate with joint targets.

One ``step(action_rad)`` = one control period (``1 / fps_hz`` s). The action is the
absolute joint-position target at the end of the period, in the robot-description joint
order (radians, gripper too). Like ``joint_trajectory_controller``, the env ramps the
servo setpoint linearly from the previous target to the new one over the period, so a
10 Hz target stream moves the arm smoothly instead of in 100 ms jerks.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from executor_core.config_cli import check_positive
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_sim import scene as sc
from executor_sim.tasks import TASK_FAMILIES, SceneInfo, Task, sample_task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvConfig:
    """How the world is built and randomised."""

    image_size_px: int = 64  # square scene-camera frames returned by reset/step
    fps_hz: float = 10.0  # control and observation rate
    task_families: tuple[str, ...] = TASK_FAMILIES  # sampled uniformly at reset
    min_cubes: int = 2
    max_cubes: int = 4
    camera_jitter_m: float = 0.0  # uniform +- jitter of camera position (0 = fixed camera)
    light_jitter: float = 0.15  # relative +- jitter of the light intensity
    mesh_arm: bool = False  # render the arm with its STL meshes (slow; for comparison)
    robot_yaml: Path | None = None  # None: config/robots/so101.yaml

    def __post_init__(self) -> None:
        if not 16 <= self.image_size_px <= sc.MAX_RENDER_PX:
            raise ValueError(
                f"image_size_px must be in [16, {sc.MAX_RENDER_PX}], got {self.image_size_px!r}"
            )
        check_positive(self, "fps_hz")
        substeps = 1.0 / (self.fps_hz * sc.PHYSICS_TIMESTEP_S)
        if abs(substeps - round(substeps)) > 1e-6:
            raise ValueError(
                f"fps_hz must divide {1 / sc.PHYSICS_TIMESTEP_S:.0f} Hz physics, got "
                f"{self.fps_hz!r}"
            )
        unknown = [f for f in self.task_families if f not in TASK_FAMILIES]
        if unknown or not self.task_families:
            raise ValueError(
                f"task_families must be a non-empty subset of {TASK_FAMILIES}, got "
                f"{self.task_families!r}"
            )
        if not 2 <= self.min_cubes <= self.max_cubes <= len(sc.CUBE_COLORS):
            raise ValueError(
                f"need 2 <= min_cubes <= max_cubes <= {len(sc.CUBE_COLORS)}, got "
                f"{self.min_cubes!r}, {self.max_cubes!r}"
            )
        if not 0.0 <= self.camera_jitter_m <= 0.05:
            raise ValueError(f"camera_jitter_m must be in [0, 0.05], got {self.camera_jitter_m!r}")
        if not 0.0 <= self.light_jitter < 1.0:
            raise ValueError(f"light_jitter must be in [0, 1), got {self.light_jitter!r}")


MAX_PUSH_DISTANCE_M = 0.13


class _LayoutError(Exception):
    """One random layout did not fit; try another."""


@dataclass
class SimState:
    """Everything needed to put the world back exactly (for tests and replays)."""

    physics: np.ndarray  # (S,) float64, mj_getState(mjSTATE_INTEGRATION)
    target_rad: np.ndarray  # (6,) last commanded joint target
    camera_pos_m: np.ndarray  # (3,)
    step_index: int = 0
    extra: dict = field(default_factory=dict)


class TabletopEnv:
    """The simulated world. Create with :func:`make_env`."""

    def __init__(self, cfg: EnvConfig) -> None:
        self.cfg = cfg
        self.robot = RobotDescription.from_yaml(cfg.robot_yaml or default_robot_path())
        self.model = sc.build_model(sc.SceneSpec(mesh_arm=cfg.mesh_arm))
        self.data = mujoco.MjData(self.model)
        self.substeps = round(1.0 / (cfg.fps_hz * self.model.opt.timestep))
        m = self.model
        self._qpos_adr = np.array([m.jnt_qposadr[m.joint(n).id] for n in self.robot.joint_names])
        self._dof_adr = np.array([m.jnt_dofadr[m.joint(n).id] for n in self.robot.joint_names])
        self._act_ids = np.array([m.actuator(n).id for n in self.robot.joint_names])
        self._cube_qpos = {c: m.jnt_qposadr[m.joint(f"cube_{c}").id] for c in sc.CUBE_COLORS}
        self._cube_dof = {c: m.jnt_dofadr[m.joint(f"cube_{c}").id] for c in sc.CUBE_COLORS}
        self._bowl_mocap = m.body_mocapid[m.body("bowl").id]
        self._mat_mocap = m.body_mocapid[m.body("mat").id]
        self._cam_id = m.camera("scene").id
        self._pad_geoms = {m.geom("fixed_jaw_pad").id, m.geom("moving_jaw_pad").id}
        self._cube_geom = {c: m.geom(f"cube_{c}").id for c in sc.CUBE_COLORS}
        self._light_diffuse0 = m.light_diffuse.copy()
        self._renderers: dict[int, mujoco.Renderer] = {}
        # The robot description bounds actions; the MJCF ranges are the same numbers.
        self.lower_rad = self.robot.lower_rad
        self.upper_rad = self.robot.upper_rad
        self.home_rad = self.robot.home_rad
        self.target_rad = self.home_rad.copy()
        self.step_index = 0
        self.num_clipped_actions = 0
        self._clip_warned = False  # one warning per episode; the rest at DEBUG, all counted
        self.scene: SceneInfo | None = None
        self.task: Task | None = None
        self.camera_pos_m = np.array(sc.CAMERA_POS_M)

    # ---- episode ----

    def reset(self, seed: int, task_family: str | None = None) -> dict[str, np.ndarray]:
        """Randomise the scene and the task from ``seed`` (reproducible); return the obs."""
        rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        # Always draw the family, even when it is given, so that reset(seed) and
        # reset(seed, family=<the family reset(seed) draws>) produce the same episode.
        drawn = self.cfg.task_families[rng.integers(len(self.cfg.task_families))]
        family = task_family or drawn
        self.scene = self._randomise(rng, family)
        self.task = sample_task(family, self.scene, rng)
        self.data.qpos[self._qpos_adr] = self.home_rad
        self.data.ctrl[self._act_ids] = self.home_rad
        self.target_rad = self.home_rad.copy()
        self.step_index = 0
        self._clip_warned = False
        mujoco.mj_forward(self.model, self.data)
        # Let the cubes settle on the table before the first frame.
        for _ in range(10):
            mujoco.mj_step(self.model, self.data)
        self.data.time = 0.0
        return self.observation()

    def _randomise(self, rng: np.random.Generator, family: str) -> SceneInfo:
        for _ in range(100):  # resample the whole layout if it does not fit
            try:
                scene = self._randomise_once(rng)
            except _LayoutError:
                continue
            # A push must stay short: the top-down workspace is a narrow ring and a long
            # push with a 2 cm pusher drifts off course.
            mat = np.asarray(scene.mat_xy)
            nearest = min(
                np.linalg.norm(np.asarray(p[:2]) - mat) for p in scene.cube_poses.values()
            )
            if family != "push" or nearest <= MAX_PUSH_DISTANCE_M:
                return scene
        raise RuntimeError("could not lay out the scene in 100 attempts")

    def _randomise_once(self, rng: np.random.Generator) -> SceneInfo:
        m, d = self.model, self.data
        n_cubes = int(rng.integers(self.cfg.min_cubes, self.cfg.max_cubes + 1))
        colors = tuple(str(c) for c in rng.permutation(sc.CUBE_COLORS)[:n_cubes])
        # Rejection-sample non-overlapping footprints: (centre xy, radius) per item.
        placed: list[tuple[np.ndarray, float]] = []

        def place(radius: float, reach_m: tuple[float, float]) -> np.ndarray:
            # Polar about the pan axis: the top-down grasp works in a ring of reach.
            for _ in range(200):
                r = rng.uniform(*reach_m)
                angle = rng.uniform(-sc.WORKSPACE_ANGLE_RAD, sc.WORKSPACE_ANGLE_RAD)
                xy = np.array([sc.PAN_AXIS_X_M + r * math.cos(angle), r * math.sin(angle)])
                if all(np.linalg.norm(xy - p) > radius + q + 0.015 for p, q in placed):
                    placed.append((xy, radius))
                    return xy
            raise _LayoutError

        bowl_xy = place(sc.BOWL_RADIUS_M + 0.008, sc.GOAL_REACH_M)
        mat_xy = place(sc.MAT_HALF_M * 1.2, sc.GOAL_REACH_M)
        cube_poses: dict[str, tuple[float, float, float, float]] = {}
        for c in colors:
            xy = place(sc.CUBE_HALF_M * 1.5, sc.CUBE_REACH_M)
            yaw = float(rng.uniform(-math.pi / 4, math.pi / 4))
            cube_poses[c] = (float(xy[0]), float(xy[1]), sc.CUBE_HALF_M, yaw)
        for i, c in enumerate(sc.CUBE_COLORS):
            if c in cube_poses:
                x, y, z, yaw = cube_poses[c]
            else:  # unused cubes wait under the table, out of sight and out of the way
                x, y, z, yaw = 1.0 + 0.1 * i, 1.0, -0.5, 0.0
            self.set_object_pose(c, np.array([x, y, z]), yaw)
        d.mocap_pos[self._bowl_mocap] = [*bowl_xy, 0.0]
        d.mocap_pos[self._mat_mocap] = [*mat_xy, 0.0]
        scale = 1.0 + rng.uniform(-self.cfg.light_jitter, self.cfg.light_jitter)
        m.light_diffuse[:] = self._light_diffuse0 * scale
        jitter = rng.uniform(-1, 1, size=3) * self.cfg.camera_jitter_m
        self._set_camera(np.array(sc.CAMERA_POS_M) + jitter)
        return SceneInfo(
            cubes=colors,
            cube_poses=cube_poses,
            bowl_xy=(float(bowl_xy[0]), float(bowl_xy[1])),
            mat_xy=(float(mat_xy[0]), float(mat_xy[1])),
            camera_pos_m=tuple(float(v) for v in self.camera_pos_m),
        )

    def _set_camera(self, pos_m: np.ndarray) -> None:
        self.camera_pos_m = np.asarray(pos_m, float)
        self.model.cam_pos[self._cam_id] = self.camera_pos_m
        self.model.cam_quat[self._cam_id] = sc.look_at_quat(
            self.camera_pos_m, np.array(sc.CAMERA_LOOKAT_M)
        )

    def step(self, action_rad: np.ndarray) -> dict[str, np.ndarray]:
        """Track the joint target ``action_rad`` (6,) for one control period; return obs."""
        action = np.asarray(action_rad, dtype=np.float64)
        if action.shape != (len(self._act_ids),):
            raise ValueError(
                f"action_rad must have shape ({len(self._act_ids)},), got {action.shape!r}"
            )
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action_rad must be finite, got {action!r}")
        clipped = np.clip(action, self.lower_rad, self.upper_rad)
        if not np.array_equal(clipped, action):
            # Not silent: counted and logged; a servo cannot go past its limits either. One
            # warning per episode: a policy that rides a limit would otherwise flood the log.
            self.num_clipped_actions += 1
            beyond = {
                name: round(float(a - c), 4)
                for name, a, c in zip(self.robot.joint_names, action, clipped, strict=True)
                if a != c
            }
            log = logger.debug if self._clip_warned else logger.warning
            log(
                "step %d: action outside joint limits by %s rad, clipped (further clips this "
                "episode at DEBUG; counted in num_clipped_actions)",
                self.step_index,
                beyond,
            )
            self._clip_warned = True
        start = self.target_rad
        for k in range(1, self.substeps + 1):
            self.data.ctrl[self._act_ids] = start + (clipped - start) * (k / self.substeps)
            mujoco.mj_step(self.model, self.data)
        self.target_rad = clipped
        self.step_index += 1
        return self.observation()

    def observation(self) -> dict[str, np.ndarray]:
        """{"image": (H, W, 3) uint8 scene camera, "state": (6,) float32 joint positions}."""
        return {
            "image": self.render(self.cfg.image_size_px),
            "state": self.joint_positions_rad().astype(np.float32),
        }

    # ---- state access ----

    def joint_positions_rad(self) -> np.ndarray:
        """(6,) measured joint positions in robot-description order."""
        return self.data.qpos[self._qpos_adr].copy()

    def joint_velocities_rad_s(self) -> np.ndarray:
        """(6,) measured joint velocities."""
        return self.data.qvel[self._dof_adr].copy()

    def object_position(self, name: str) -> np.ndarray:
        """(3,) world position of cube ``name`` (a colour), "bowl" or "mat"."""
        if name == "bowl":
            return self.data.mocap_pos[self._bowl_mocap].copy()
        if name == "mat":
            return self.data.mocap_pos[self._mat_mocap].copy()
        if name not in self._cube_qpos:
            raise KeyError(f"unknown object {name!r}; known: {(*sc.CUBE_COLORS, 'bowl', 'mat')}")
        adr = self._cube_qpos[name]
        return self.data.qpos[adr : adr + 3].copy()

    def object_quat(self, name: str) -> np.ndarray:
        """(4,) world orientation (w, x, y, z) of cube ``name``."""
        adr = self._cube_qpos[name]
        return self.data.qpos[adr + 3 : adr + 7].copy()

    def object_speed_m_s(self, name: str) -> float:
        adr = self._cube_dof[name]
        return float(np.linalg.norm(self.data.qvel[adr : adr + 3]))

    def touching_gripper(self, name: str) -> bool:
        """Whether cube ``name`` is in contact with either fingertip pad."""
        geom = self._cube_geom[name]
        for i in range(self.data.ncon):
            pair = {int(self.data.contact[i].geom1), int(self.data.contact[i].geom2)}
            if geom in pair and pair & self._pad_geoms:
                return True
        return False

    def set_object_pose(self, name: str, pos_m: np.ndarray, yaw_rad: float = 0.0) -> None:
        """Place cube ``name`` (or move the bowl/mat) and zero its velocity (for tests)."""
        if name in ("bowl", "mat"):
            mocap = self._bowl_mocap if name == "bowl" else self._mat_mocap
            self.data.mocap_pos[mocap] = pos_m
        else:
            if name not in self._cube_qpos:
                raise KeyError(f"unknown object {name!r}")
            adr, dof = self._cube_qpos[name], self._cube_dof[name]
            self.data.qpos[adr : adr + 3] = pos_m
            self.data.qpos[adr + 3 : adr + 7] = [math.cos(yaw_rad / 2), 0, 0, math.sin(yaw_rad / 2)]
            self.data.qvel[dof : dof + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def get_state(self) -> SimState:
        size = mujoco.mj_stateSize(self.model, mujoco.mjtState.mjSTATE_INTEGRATION)
        physics = np.empty(size)
        mujoco.mj_getState(self.model, self.data, physics, mujoco.mjtState.mjSTATE_INTEGRATION)
        return SimState(physics, self.target_rad.copy(), self.camera_pos_m.copy(), self.step_index)

    def set_state(self, state: SimState) -> None:
        mujoco.mj_setState(
            self.model, self.data, state.physics, mujoco.mjtState.mjSTATE_INTEGRATION
        )
        self.target_rad = state.target_rad.copy()
        self.step_index = state.step_index
        self._set_camera(state.camera_pos_m)
        mujoco.mj_forward(self.model, self.data)

    # ---- rendering ----

    def render(self, size_px: int | None = None) -> np.ndarray:
        """(size_px, size_px, 3) uint8 RGB frame of the scene camera."""
        size = int(size_px or self.cfg.image_size_px)
        if not 16 <= size <= sc.MAX_RENDER_PX:
            raise ValueError(f"size_px must be in [16, {sc.MAX_RENDER_PX}], got {size_px!r}")
        renderer = self._renderers.get(size)
        if renderer is None:
            # One renderer per size for the env's lifetime: freeing an EGL context while
            # another is current corrupts later frames.
            renderer = mujoco.Renderer(self.model, size, size)
            self._renderers[size] = renderer
        renderer.update_scene(self.data, camera=self._cam_id)
        return renderer.render().copy()

    def render_with_arm_at(
        self, joint_positions_rad: np.ndarray, size_px: int | None = None
    ) -> np.ndarray:
        """The scene camera's frame with the arm posed at ``joint_positions_rad`` (6,) and
        every object where it is now (nothing is simulated); the world is then put back
        exactly. For goal frames that show the arm a little off the path it took."""
        joints = np.asarray(joint_positions_rad, dtype=np.float64)
        if joints.shape != self._qpos_adr.shape or not np.all(np.isfinite(joints)):
            raise ValueError(
                f"joint_positions_rad must be {self._qpos_adr.shape[0]} finite values, got "
                f"{joint_positions_rad!r}"
            )
        saved = self.get_state()
        try:
            self.data.qpos[self._qpos_adr] = joints
            mujoco.mj_forward(self.model, self.data)
            return self.render(size_px)
        finally:
            self.set_state(saved)

    def camera_extrinsics(self) -> np.ndarray:
        """(4, 4) world_from_camera (OpenCV axes) of the current, possibly jittered, camera."""
        return sc.camera_extrinsics(self.camera_pos_m, sc.CAMERA_LOOKAT_M)

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()


def make_env(cfg: EnvConfig | None = None) -> TabletopEnv:
    """Build the tabletop world (call ``reset(seed)`` before stepping)."""
    return TabletopEnv(cfg or EnvConfig())
