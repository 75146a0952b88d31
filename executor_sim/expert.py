"""Scripted expert: Cartesian waypoints for the grasp point, top-down IK, joint targets.

The plan is made once from the initial state (the cubes do not move before the gripper
touches them) and played open loop, one absolute joint target per control step. Each
segment moves the grasp point along a straight line with a smoothstep time profile;
every per-step joint change stays under the robot description's velocity limit. After
the last segment the expert holds still; ``done_step`` records when it finished.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from executor_sim import scene as sc
from executor_sim.env import TabletopEnv
from executor_sim.kinematics import TopDownIK
from executor_sim.tasks import Task

logger = logging.getLogger(__name__)

GRIPPER_OPEN_RAD = 0.7  # ~55 mm between the pads
GRIPPER_CLOSED_RAD = -0.15  # below contact: the servo keeps squeezing the cube
GRIPPER_STEP_RAD = 0.25  # per control step (2.5 rad/s at 10 Hz, under the 3 rad/s limit)
HOVER_Z_M = 0.065  # grasp point height for moves (top-down IK holds up to ~0.07 m)
GRASP_Z_M = sc.CUBE_HALF_M + 0.002  # pads centred just above the cube centre
PUSH_Z_M = 0.012  # pad bottoms ~5 mm above the table
RELEASE_GAP_M = 0.004  # carried cube released this far above its support
# Starting guesses (pan, lift, elbow, flex, roll) for the first top-down solution.
IK_SEEDS = (
    np.array([0.0, -0.5, 0.5, 1.5, 0.0]),
    np.array([0.0, 0.0, 0.0, 1.5, 0.0]),
    np.array([0.0, 0.5, -0.5, 1.5, 0.0]),
)


@dataclass(frozen=True)
class Waypoint:
    point_m: tuple[float, float, float]  # grasp point target at the end of the segment
    yaw_rad: float  # jaw opening direction
    gripper_rad: float  # gripper target during the segment (ramped at GRIPPER_STEP_RAD)
    steps: int  # control steps in the segment
    label: str


def _cube_yaw(env: TabletopEnv, name: str) -> float:
    w, _, _, z = env.object_quat(name)
    return 2.0 * math.atan2(z, w)


def _nearest_equivalent(angle: float, reference: float, period: float) -> float:
    """``angle`` plus a multiple of ``period`` closest to ``reference``."""
    return angle + period * round((reference - angle) / period)


def _least_roll_yaw(ik: TopDownIK, point_m: np.ndarray, yaw_rad: float, period: float) -> float:
    """Of the equivalent jaw yaws ``yaw_rad + k * period``, the one needing the least wrist
    roll at ``point_m`` (keeps the roll joint away from its limits)."""
    candidates = [yaw_rad + k * period for k in range(-2, 3) if abs(k * period) <= math.pi]
    solutions = [(ik.solve(point_m, y, IK_SEEDS[0], iters=60), y) for y in candidates]
    return min(solutions, key=lambda s: (not s[0].ok, abs(s[0].q_rad[4])))[1]


def _travel_steps(a: np.ndarray, b: np.ndarray, speed_m_s: float, fps_hz: float,
                  minimum: int) -> int:
    return max(minimum, math.ceil(np.linalg.norm(b - a) / speed_m_s * fps_hz))


def _pick_and_place_waypoints(env: TabletopEnv, ik: TopDownIK, task: Task, start: np.ndarray,
                              fps: float) -> list[Waypoint]:
    cube = env.object_position(task.obj)
    # Jaws open across the cube faces; a cube looks the same every 90 degrees.
    yaw = _least_roll_yaw(ik, cube, _cube_yaw(env, task.obj), math.pi / 2)
    if task.family == "pick_place":
        goal = env.object_position("bowl")
        place_z = 0.004 + sc.CUBE_HALF_M + RELEASE_GAP_M
        place_yaw = yaw
    else:  # stack
        goal = env.object_position(task.target)
        place_z = goal[2] + 2 * sc.CUBE_HALF_M + RELEASE_GAP_M
        place_yaw = _nearest_equivalent(_cube_yaw(env, task.target), yaw, math.pi / 2)
    above_cube = np.array([cube[0], cube[1], HOVER_Z_M])
    above_goal = np.array([goal[0], goal[1], HOVER_Z_M])
    o, c = GRIPPER_OPEN_RAD, GRIPPER_CLOSED_RAD
    return [
        Waypoint(tuple(above_cube), yaw, o, _travel_steps(start, above_cube, 0.2, fps, 8),
                 "reach above the cube"),
        Waypoint((cube[0], cube[1], GRASP_Z_M), yaw, o, 5, "descend"),
        Waypoint((cube[0], cube[1], GRASP_Z_M), yaw, c, 5, "close"),
        Waypoint(tuple(above_cube), yaw, c, 4, "lift"),
        Waypoint(tuple(above_goal), place_yaw, c,
                 _travel_steps(above_cube, above_goal, 0.2, fps, 7), "carry"),
        Waypoint((goal[0], goal[1], place_z), place_yaw, c, 4, "lower"),
        Waypoint((goal[0], goal[1], place_z), place_yaw, o, 3, "release"),
        Waypoint(tuple(above_goal), place_yaw, o, 4, "retreat"),
    ]


def _push_waypoints(env: TabletopEnv, ik: TopDownIK, task: Task, start: np.ndarray,
                    fps: float) -> list[Waypoint]:
    cube = env.object_position(task.obj)
    goal = env.object_position("mat")
    delta = goal[:2] - cube[:2]
    direction = delta / max(np.linalg.norm(delta), 1e-6)
    # Closed jaws side by side across the push direction make a ~2 cm wide pusher.
    yaw = math.atan2(direction[1], direction[0]) + math.pi / 2
    yaw = _least_roll_yaw(ik, np.array([*behind, HOVER_Z_M]), yaw, math.pi)
    behind = cube[:2] - direction * (sc.CUBE_HALF_M + 0.025)
    # Stop with the cube centre a little past the mat centre's near side.
    end = goal[:2] - direction * (sc.CUBE_HALF_M + 0.008)
    above_start = np.array([behind[0], behind[1], HOVER_Z_M])
    push_start = np.array([behind[0], behind[1], PUSH_Z_M])
    push_end = np.array([end[0], end[1], PUSH_Z_M])
    c = GRIPPER_CLOSED_RAD
    return [
        Waypoint(tuple(above_start), yaw, c, _travel_steps(start, above_start, 0.15, fps, 8),
                 "reach behind the cube"),
        Waypoint(tuple(push_start), yaw, c, 6, "descend"),
        Waypoint(tuple(push_end), yaw, c, _travel_steps(push_start, push_end, 0.08, fps, 6),
                 "push"),
        Waypoint((push_end[0], push_end[1], HOVER_Z_M), yaw, c, 5, "retreat"),
    ]


class ExpertPolicy:
    """Open-loop scripted expert for one task instance. Call once per control step."""

    def __init__(self, env: TabletopEnv, task: Task) -> None:
        self.task = task
        self.ik = TopDownIK(env.model, env.lower_rad, env.upper_rad)
        fps = env.cfg.fps_hz
        q_start = env.joint_positions_rad()
        start_point, _, _ = self.ik.forward(q_start[:5])
        if task.family == "push":
            self.waypoints = _push_waypoints(env, self.ik, task, start_point, fps)
        else:
            self.waypoints = _pick_and_place_waypoints(env, self.ik, task, start_point, fps)
        self._max_step_rad = env.robot.max_velocity_rad_s / fps  # (6,)
        self.plan_rad, self.ik_failures = self._plan(q_start, start_point)
        self.done_step = len(self.plan_rad)  # steps after this hold the last target
        self._t = 0
        if self.ik_failures:
            logger.info("expert plan for %r: %d waypoints off the IK tolerance",
                        task.prompt, self.ik_failures)

    def _plan(self, q_start: np.ndarray, start_point: np.ndarray) -> tuple[np.ndarray, int]:
        rows: list[np.ndarray] = []
        q = q_start.copy()
        point = np.asarray(start_point, float)
        yaw = self.waypoints[0].yaw_rad
        failures = 0
        for i, wp in enumerate(self.waypoints):
            steps = wp.steps
            # Stretch a segment until no joint moves faster than its velocity limit.
            while True:
                seg, seg_failures = self._segment(i, wp, steps, q, point, yaw)
                deltas = np.abs(np.diff(np.vstack([q, seg]), axis=0))
                if np.all(deltas <= 0.9 * self._max_step_rad) or steps >= 4 * wp.steps:
                    break
                steps += 1
            rows.extend(seg)
            failures += seg_failures
            q = seg[-1]
            point, yaw = np.asarray(wp.point_m, float), wp.yaw_rad
        return np.asarray(rows), failures

    def _segment(self, index: int, wp: Waypoint, steps: int, q: np.ndarray, point: np.ndarray,
                 yaw: float) -> tuple[np.ndarray, int]:
        target = np.asarray(wp.point_m, float)
        failures = 0
        q_arm, gripper = q[:5].copy(), float(q[5])
        if index == 0:
            # From the (not top-down) home pose: straight in joint space to the first
            # waypoint's IK solution, tried from a few elbow configurations.
            first = min((self.ik.solve(target, wp.yaw_rad, q0, iters=100)
                         for q0 in (q_arm, *IK_SEEDS)),
                        key=lambda r: (not r.ok, r.position_error_m + r.axis_error))
            failures += 0 if first.ok else 1
        rows = []
        for k in range(1, steps + 1):
            s = k / steps
            s = s * s * (3 - 2 * s)  # smoothstep: zero velocity at both ends
            if index == 0:
                q_arm = q[:5] + (first.q_rad - q[:5]) * s
            else:
                result = self.ik.solve(point + (target - point) * s,
                                       yaw + (wp.yaw_rad - yaw) * s, q_arm, iters=30)
                q_arm = result.q_rad
                failures += 0 if result.ok else 1
            gripper += float(np.clip(wp.gripper_rad - gripper, -GRIPPER_STEP_RAD,
                                     GRIPPER_STEP_RAD))
            rows.append(np.concatenate([q_arm, [gripper]]))
        return np.asarray(rows), failures

    @property
    def done(self) -> bool:
        return self._t >= self.done_step

    def __call__(self, env: TabletopEnv | None = None) -> np.ndarray:
        """The next absolute joint target (6,), radians."""
        row = self.plan_rad[min(self._t, self.done_step - 1)]
        self._t += 1
        return row.copy()


def expert_policy(env: TabletopEnv, task: Task | None = None) -> ExpertPolicy:
    """The scripted expert for ``task`` (default: the env's current task) from the current
    state. Call it once per step: ``env.step(policy(env))``."""
    task = task or env.task
    if task is None:
        raise ValueError("no task: call env.reset(seed) first or pass a task")
    return ExpertPolicy(env, task)
