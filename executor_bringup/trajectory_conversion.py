"""trajectory_msgs/JointTrajectory <-> executor_core.types.JointTrajectory, and Durations.

The sibling of ``image_conversion.py`` for trajectories: the nodes convert at their edge
so the core only sees typed numpy dataclasses.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from builtin_interfaces.msg import Duration
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from trajectory_msgs.msg import JointTrajectoryPoint

from executor_core.types import JointTrajectory

logger = logging.getLogger(__name__)


def duration_to_s(duration: Duration) -> float:
    return float(duration.sec) + 1e-9 * float(duration.nanosec)


def s_to_duration(t_s: float) -> Duration:
    if not math.isfinite(t_s) or t_s < 0:
        raise ValueError(f"duration must be finite and >= 0 s, got {t_s!r}")
    sec = math.floor(t_s)
    nanosec = round((t_s - sec) * 1e9)
    if nanosec >= 1_000_000_000:  # rounding up to the next whole second
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Duration(sec=int(sec), nanosec=int(nanosec))


def trajectory_to_msg(traj: JointTrajectory) -> JointTrajectoryMsg:
    msg = JointTrajectoryMsg()
    msg.joint_names = list(traj.joint_names)
    for i in range(traj.positions_rad.shape[0]):
        point = JointTrajectoryPoint()
        point.positions = traj.positions_rad[i].astype(float).tolist()
        if traj.velocities_rad_s is not None:
            point.velocities = traj.velocities_rad_s[i].astype(float).tolist()
        if traj.accelerations_rad_s2 is not None:
            point.accelerations = traj.accelerations_rad_s2[i].astype(float).tolist()
        point.time_from_start = s_to_duration(float(traj.time_from_start_s[i]))
        msg.points.append(point)
    return msg


def msg_arrays(
    msg: JointTrajectoryMsg,
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray | None]:
    """Raw arrays for the safety checks: names, (N, J) q, (N,) t, (N, J) v or None.

    Ragged points (a point with the wrong number of positions) raise ValueError naming
    the point, since no array shape can represent them.
    """
    names = tuple(msg.joint_names)
    for i, point in enumerate(msg.points):
        if len(point.positions) != len(names):
            raise ValueError(
                f"point {i} has {len(point.positions)} positions for {len(names)} joints"
            )
        if len(point.velocities) not in (0, len(names)):
            raise ValueError(
                f"point {i} has {len(point.velocities)} velocities for {len(names)} joints"
            )
    q = np.array([list(p.positions) for p in msg.points], dtype=np.float64).reshape(
        len(msg.points), len(names)
    )
    t = np.array([duration_to_s(p.time_from_start) for p in msg.points], dtype=np.float64)
    has_v = bool(msg.points) and all(len(p.velocities) == len(names) for p in msg.points)
    v = np.array([list(p.velocities) for p in msg.points]) if has_v else None
    return names, q, t, v
