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
from dataclasses import dataclass, replace

import numpy as np

from executor_sim import scene as sc
from executor_sim.env import TabletopEnv
from executor_sim.kinematics import TopDownIK
from executor_sim.tasks import Task

logger = logging.getLogger(__name__)

GRIPPER_OPEN_RAD = 0.7  # ~55 mm between the pads
GRIPPER_CLOSED_RAD = -0.15  # below contact: the servo keeps squeezing the cube
GRIPPER_STEP_RAD = 0.25  # per control step (2.5 rad/s at 10 Hz, under the 3 rad/s limit)
# Fixed pad centre to cube centre at the grasp: cube half + pad half-thickness + 4 mm
# clearance for arm tracking lag (the moving jaw pushes the cube over when closing).
FIXED_PAD_TO_GRASP_M = sc.CUBE_HALF_M + 0.00525 + 0.004
HOVER_Z_M = 0.065  # grasp point height for moves (top-down IK holds up to ~0.07 m)
GRASP_Z_M = sc.CUBE_HALF_M + 0.002  # pads centred just above the cube centre
PUSH_Z_M = 0.012  # pad bottoms ~5 mm above the table
RELEASE_GAP_M = 0.004  # carried cube released this far above its support
RISE_M = 0.03
PUSH_SPEED_M_S = 0.14
PUSH_MARGIN_M = 0.015  # push until the cube centre is this far inside the mat edges
PUSH_DONE_M = 0.015  # cube centre this close to the mat centre ends the push
# A pusher need not point straight down: a soft finger-axis constraint lets the arm tilt
# and push cubes near the base or far out, where a vertical wrist cannot reach.
PUSH_AXIS_WEIGHT = 0.1
PUSHER_HALF_M = 0.008  # pusher point to its contact face (pad half-thickness)
PUSH_LEAD_M = 0.01
MAX_REAIMS = 2
_REAIM = object()  # _push_step's answer when it queued a re-approach
# Starting guesses (pan, lift, elbow, flex, roll) for the first top-down solution.
IK_SEEDS = (
    np.array([0.0, -0.5, 0.5, 1.5, 0.0]),
    np.array([0.0, 0.0, 0.0, 1.5, 0.0]),
    np.array([0.0, 0.5, -0.5, 1.5, 0.0]),
)


@dataclass(frozen=True)
class Waypoint:
    point_m: tuple[float, float, float] | None  # grasp point at the segment end; None: rise
    # RISE_M above wherever the previous segment ended
    yaw_rad: float  # jaw opening direction
    gripper_rad: float  # gripper target during the segment (ramped at GRIPPER_STEP_RAD)
    steps: int  # control steps in the segment
    label: str

    @property
    def is_home(self) -> bool:
        return self.label == "return home"


# Last segment of every task: back to the home pose in joint space, which also shows the
# result unoccluded in the final frames.
_HOME = Waypoint(None, 0.0, 0.0, 7, "return home")


def _cube_yaw(env: TabletopEnv, name: str) -> float:
    w, _, _, z = env.object_quat(name)
    return 2.0 * math.atan2(z, w)


def _nearest_equivalent(angle: float, reference: float, period: float) -> float:
    """``angle`` plus a multiple of ``period`` closest to ``reference``."""
    return angle + period * round((reference - angle) / period)


def _least_roll_yaw(
    ik: TopDownIK, point_m: np.ndarray, yaw_rad: float, period: float, pusher: bool = False
) -> float:
    """Of the equivalent jaw yaws ``yaw_rad + k * period``, the one needing the least wrist
    roll at ``point_m`` (keeps the roll joint away from its limits)."""
    candidates = [yaw_rad + k * period for k in range(-2, 3) if abs(k * period) <= math.pi]
    solutions = [
        (ik.solve(point_m, y, IK_SEEDS[0], iters=60, pusher=pusher), y) for y in candidates
    ]
    return min(solutions, key=lambda s: (not s[0].ok, abs(s[0].q_rad[4])))[1]


def _travel_steps(
    a: np.ndarray, b: np.ndarray, speed_m_s: float, fps_hz: float, minimum: int
) -> int:
    return max(minimum, math.ceil(np.linalg.norm(b - a) / speed_m_s * fps_hz))


def _pick_and_place_waypoints(
    env: TabletopEnv, ik: TopDownIK, task: Task, start: np.ndarray, fps: float
) -> list[Waypoint]:
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
        Waypoint(
            tuple(above_cube),
            yaw,
            o,
            _travel_steps(start, above_cube, 0.2, fps, 8),
            "reach above the cube",
        ),
        Waypoint((cube[0], cube[1], GRASP_Z_M), yaw, o, 5, "descend"),
        Waypoint((cube[0], cube[1], GRASP_Z_M), yaw, c, 5, "close"),
        Waypoint(tuple(above_cube), yaw, c, 4, "lift"),
        Waypoint(
            tuple(above_goal),
            place_yaw,
            c,
            _travel_steps(above_cube, above_goal, 0.2, fps, 7),
            "carry",
        ),
        Waypoint((goal[0], goal[1], place_z), place_yaw, c, 4, "lower"),
        Waypoint((goal[0], goal[1], place_z), place_yaw, o, 3, "release"),
        Waypoint((goal[0], goal[1], place_z + 0.02), place_yaw, o, 3, "retreat"),
        _HOME,
    ]


def _push_waypoints(
    env: TabletopEnv, ik: TopDownIK, task: Task, start: np.ndarray, fps: float
) -> list[Waypoint]:
    cube = env.object_position(task.obj)
    goal = env.object_position("mat")
    delta = goal[:2] - cube[:2]
    direction = delta / max(np.linalg.norm(delta), 1e-6)
    # Closed jaws side by side across the push direction make a ~2 cm wide pusher.
    yaw = math.atan2(direction[1], direction[0]) + math.pi / 2
    behind = cube[:2] - direction * (sc.CUBE_HALF_M + PUSHER_HALF_M + 0.015)
    yaw = _least_roll_yaw(ik, np.array([*behind, HOVER_Z_M]), yaw, math.pi, pusher=True)
    # The push segment is closed-loop (see ExpertPolicy._push_step): its point is the goal
    # of the cube centre, its step count a budget.
    end = goal[:2] - direction * (sc.CUBE_HALF_M + 0.006)
    above_start = np.array([behind[0], behind[1], HOVER_Z_M])
    push_start = np.array([behind[0], behind[1], PUSH_Z_M])
    push_end = np.array([end[0], end[1], PUSH_Z_M])
    budget = 12 + _travel_steps(push_start, push_end, PUSH_SPEED_M_S, fps, 6)
    c = GRIPPER_CLOSED_RAD
    return [
        Waypoint(
            tuple(above_start),
            yaw,
            c,
            _travel_steps(start, above_start, 0.2, fps, 8),
            "reach behind the cube",
        ),
        Waypoint(tuple(push_start), yaw, c, 5, "descend"),
        Waypoint((goal[0], goal[1], PUSH_Z_M), yaw, c, budget, "push"),
        Waypoint(None, yaw, c, 3, "retreat"),
        _HOME,
    ]


class ExpertPolicy:
    """Scripted expert for one task instance. Call once per control step.

    Segments are planned lazily from the last commanded joint target, so the push segment
    can be closed-loop: each step it re-aims the pusher behind the cube's current position
    (a pushed cube drifts sideways; an open-loop push misses the mat).
    """

    def __init__(self, env: TabletopEnv, task: Task) -> None:
        self.task = task
        self.ik = TopDownIK(
            env.model, env.lower_rad, env.upper_rad, fixed_pad_to_grasp_m=FIXED_PAD_TO_GRASP_M
        )
        # Pushing steers the closed-jaw tip; grasping the point between the open pads.
        self.pusher = task.family == "push"
        self._axis_weight = PUSH_AXIS_WEIGHT if self.pusher else 0.5
        self.fps_hz = env.cfg.fps_hz
        self._max_step_rad = env.robot.max_velocity_rad_s / self.fps_hz  # (6,)
        self.home_rad = env.home_rad.copy()
        q_start = env.joint_positions_rad()
        start_point, _, _ = self.ik.forward(q_start[:5], self.pusher)
        if self.pusher:
            self.waypoints = _push_waypoints(env, self.ik, task, start_point, self.fps_hz)
        else:
            self.waypoints = _pick_and_place_waypoints(env, self.ik, task, start_point, self.fps_hz)
        self.ik_failures = 0
        self.done_step: int | None = None  # control step at which the expert finished
        self._segment_index = 0
        self._queue: list[np.ndarray] = []
        self._q_cmd = q_start.copy()  # last commanded target (6,)
        self._point = np.asarray(start_point, float)
        self._yaw = self.waypoints[0].yaw_rad
        self._push_steps = 0
        self._reaims = 0
        self._t = 0

    @property
    def done(self) -> bool:
        return self.done_step is not None

    def __call__(self, env: TabletopEnv) -> np.ndarray:
        """The next absolute joint target (6,), radians."""
        while not self._queue and self._segment_index < len(self.waypoints):
            wp = self.waypoints[self._segment_index]
            if wp.point_m is None and not wp.is_home:
                wp = replace(wp, point_m=tuple(self._point + np.array([0.0, 0.0, RISE_M])))
            if wp.label == "push":
                row = self._push_step(env, wp)
                if row is _REAIM:
                    continue  # re-approach segments were inserted before the push
                if row is not None:
                    self._queue.append(row)
                    break
            else:
                self._queue.extend(self._plan_segment(wp))
                if not wp.is_home:
                    self._point, self._yaw = np.asarray(wp.point_m, float), wp.yaw_rad
            self._segment_index += 1
        if self._queue:
            self._q_cmd = self._queue.pop(0)
        elif self.done_step is None:
            self.done_step = self._t
        self._t += 1
        return self._q_cmd.copy()

    def _push_step(self, env: TabletopEnv, wp: Waypoint) -> np.ndarray | object | None:
        """One closed-loop pushing step, or None when the cube is on target or time is up."""
        cube = env.object_position(self.task.obj)[:2]
        goal = np.asarray(wp.point_m[:2])
        to_goal = goal - cube
        remaining = float(np.linalg.norm(to_goal))
        # Done once the cube is well inside the mat (it coasts a little after release).
        inside = bool(np.all(np.abs(to_goal) < sc.MAT_HALF_M - PUSH_MARGIN_M))
        if inside or remaining < PUSH_DONE_M or self._push_steps >= wp.steps:
            return None
        self._push_steps += 1
        u = to_goal / remaining
        # Work in the cube's frame along the cube->goal line: advance at constant speed but
        # never command the pusher more than PUSH_LEAD_M into the cube (the servo lags, an
        # unbounded lead would drive the pusher through it), and steer sideways back onto
        # the line (half the offset per step) when the cube has drifted.
        offset = self._point[:2] - cube
        along = float(offset @ u)
        lateral = offset - along * u
        contact = -(sc.CUBE_HALF_M + PUSHER_HALF_M)
        lost = along > -sc.CUBE_HALF_M or np.linalg.norm(lateral) > 0.8 * sc.CUBE_HALF_M
        if lost and self._reaims < MAX_REAIMS:
            # The cube slid off the pusher: lift, go behind it again, lower.
            self._reaims += 1
            behind = cube - u * (sc.CUBE_HALF_M + PUSHER_HALF_M + 0.012)
            yaw = _nearest_equivalent(math.atan2(u[1], u[0]) + math.pi / 2, self._yaw, math.pi)
            up_z = PUSH_Z_M + 0.04
            c = GRIPPER_CLOSED_RAD
            self.waypoints[self._segment_index : self._segment_index] = [
                Waypoint((self._point[0], self._point[1], up_z), self._yaw, c, 3, "lift"),
                Waypoint((behind[0], behind[1], up_z), yaw, c, 4, "re-aim"),
                Waypoint((behind[0], behind[1], PUSH_Z_M), yaw, c, 3, "descend"),
            ]
            return _REAIM
        along = min(along + PUSH_SPEED_M_S / self.fps_hz, contact + PUSH_LEAD_M)
        move = cube + along * u + 0.5 * lateral - self._point[:2]
        limit = 2.0 * PUSH_SPEED_M_S / self.fps_hz
        if np.linalg.norm(move) > limit:
            move *= limit / np.linalg.norm(move)
        self._point = np.array([*(self._point[:2] + move), PUSH_Z_M])
        result = self.ik.solve(
            self._point,
            self._yaw,
            self._q_cmd[:5],
            iters=30,
            pusher=True,
            axis_weight=PUSH_AXIS_WEIGHT,
        )
        self.ik_failures += 0 if result.position_error_m < 2e-3 else 1
        return np.concatenate([result.q_rad, [self._q_cmd[5]]])

    def _plan_segment(self, wp: Waypoint) -> list[np.ndarray]:
        """Rows of one open-loop segment, stretched until every joint respects its
        velocity limit."""
        steps = wp.steps
        while True:
            rows, failures = self._segment(wp, steps)
            deltas = np.abs(np.diff(np.vstack([self._q_cmd, rows]), axis=0))
            if np.all(deltas <= 0.9 * self._max_step_rad) or steps >= 4 * wp.steps:
                break
            steps += 1
        self.ik_failures += failures
        return list(rows)

    def _segment(self, wp: Waypoint, steps: int) -> tuple[np.ndarray, int]:
        q, point, yaw = self._q_cmd, self._point, self._yaw
        target = np.asarray(wp.point_m, float)
        failures = 0
        q_arm, gripper = q[:5].copy(), float(q[5])
        if wp.is_home:
            rows = [q + (self.home_rad - q) * _smoothstep(k / steps) for k in range(1, steps + 1)]
            return np.asarray(rows), 0
        if self._segment_index == 0:
            # From the (not top-down) home pose: straight in joint space to the first
            # waypoint's IK solution, tried from a few elbow configurations.
            first = min(
                (
                    self.ik.solve(
                        target,
                        wp.yaw_rad,
                        q0,
                        iters=100,
                        pusher=self.pusher,
                        axis_weight=self._axis_weight,
                    )
                    for q0 in (q_arm, *IK_SEEDS)
                ),
                key=lambda r: (not r.ok, r.position_error_m + r.axis_error),
            )
            failures += 0 if first.ok else 1
        rows = []
        for k in range(1, steps + 1):
            s = _smoothstep(k / steps)  # zero velocity at both ends
            if self._segment_index == 0:
                q_arm = q[:5] + (first.q_rad - q[:5]) * s
            else:
                result = self.ik.solve(
                    point + (target - point) * s,
                    yaw + (wp.yaw_rad - yaw) * s,
                    q_arm,
                    iters=30,
                    pusher=self.pusher,
                    axis_weight=self._axis_weight,
                )
                q_arm = result.q_rad
                failures += 0 if result.position_error_m < 2e-3 else 1
            gripper += float(np.clip(wp.gripper_rad - gripper, -GRIPPER_STEP_RAD, GRIPPER_STEP_RAD))
            rows.append(np.concatenate([q_arm, [gripper]]))
        return np.asarray(rows), failures


def _smoothstep(s: float) -> float:
    return s * s * (3.0 - 2.0 * s)


def expert_policy(env: TabletopEnv, task: Task | None = None) -> ExpertPolicy:
    """The scripted expert for ``task`` (default: the env's current task) from the current
    state. Call it once per step: ``env.step(policy(env))``."""
    task = task or env.task
    if task is None:
        raise ValueError("no task: call env.reset(seed) first or pass a task")
    return ExpertPolicy(env, task)
