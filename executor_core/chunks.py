"""Action chunks and joint trajectories: chaining, concatenation, the move home, resampling.

The one place where IDM chunks become trajectories (``chain_chunks``) and where a
trajectory is sampled at a controller's rate (``sample_at_rate``): the goal runner, the
IDM policy, the simulator adapter and the sim arm all use these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from executor_core.config_cli import require_positive
from executor_core.trajectory_control import Interpolation, make_active
from executor_core.types import ActionChunk, JointTrajectory


def chain_chunks(
    chunks: Sequence[ActionChunk], joint_names: tuple[str, ...], start_time_s: float = 0.0
) -> JointTrajectory:
    """Concatenate chunks into one trajectory at their control rate.

    Row n is the target commanded at control step n, which the arm should reach one period
    later: ``time_from_start_s[n] = start_time_s + (n + 1) / rate``. The arm starts from
    where it is and reaches the first target in 1/rate s, as the IDM was trained (state t
    -> target t+1).
    """
    if not chunks:
        raise ValueError("no action chunks to chain: empty list (video had fewer than 2 frames?)")
    if not (np.isfinite(start_time_s) and start_time_s >= 0):
        raise ValueError(f"start_time_s must be >= 0, got {start_time_s!r}")
    rate_hz = chunks[0].control_rate_hz
    for i, c in enumerate(chunks):
        if tuple(c.joint_names) != tuple(joint_names) or c.control_rate_hz != rate_hz:
            raise ValueError(
                f"chunk {i} has joints {c.joint_names!r} at {c.control_rate_hz!r} Hz, "
                f"expected {tuple(joint_names)!r} at {rate_hz!r} Hz"
            )
    positions = np.concatenate([c.joint_positions_rad for c in chunks]).astype(np.float64)
    times = start_time_s + np.arange(1, positions.shape[0] + 1, dtype=np.float64) / rate_hz
    return JointTrajectory(
        joint_names=tuple(joint_names),
        positions_rad=positions,
        time_from_start_s=times,
        metadata={"control_rate_hz": f"{rate_hz:g}", "chunks": str(len(chunks))},
    )


def concatenate_trajectories(parts: Sequence[JointTrajectory]) -> JointTrajectory:
    """Back-to-back concatenation: part i+1's clock starts where part i ends.

    Records what a closed-loop segment commanded as one trajectory; the wall-clock gaps
    between the chunks (prediction, sending) are not in it.
    """
    if not parts:
        raise ValueError("no trajectories to concatenate")
    names = tuple(parts[0].joint_names)
    offsets = np.cumsum([0.0] + [p.duration_s for p in parts[:-1]])
    for i, p in enumerate(parts):
        if tuple(p.joint_names) != names:
            raise ValueError(f"trajectory {i} joint names {p.joint_names!r} differ from {names!r}")
    return JointTrajectory(
        joint_names=names,
        positions_rad=np.concatenate([p.positions_rad for p in parts]),
        time_from_start_s=np.concatenate(
            [p.time_from_start_s + off for p, off in zip(parts, offsets, strict=True)]
        ),
        metadata={"chunks": str(len(parts))},
    )


def return_home(
    joint_names: tuple[str, ...],
    joint_positions_rad: np.ndarray,  # (J,) measured now
    home_rad: np.ndarray,  # (J,) the pose every training clip starts from
    speed_rad_s: float,
    rate_hz: float,
    keep_joints: tuple[str, ...] = ("gripper",),
    tolerance_rad: float = 0.05,
) -> JointTrajectory | None:
    """A straight joint-space move back to the home pose before re-imagining, or None.

    The video models learn from clips that start with the arm at home; a video imagined
    from a camera image with the arm elsewhere is out of their distribution (in the sim
    evaluation such re-imagined videos were mostly noise). Joints in ``keep_joints`` hold
    their measured position, so a grasped object stays in the hand. The fastest joint moves
    at ``speed_rad_s``; one row per control period (``rate_hz``). None when every moving
    joint is already within ``tolerance_rad`` of home.
    """
    q = np.asarray(joint_positions_rad, dtype=np.float64)
    home = np.asarray(home_rad, dtype=np.float64)
    if q.shape != (len(joint_names),) or home.shape != q.shape:
        raise ValueError(
            f"need (J,) = ({len(joint_names)},) positions and home, got {q.shape!r}, {home.shape!r}"
        )
    if not (speed_rad_s > 0 and rate_hz > 0):
        raise ValueError(f"need speed_rad_s, rate_hz > 0; got {speed_rad_s!r}, {rate_hz!r}")
    unknown = sorted(set(keep_joints) - set(joint_names))
    if unknown:
        raise ValueError(f"keep_joints {unknown!r} are not joints of {joint_names!r}")
    moving = np.array([name not in keep_joints for name in joint_names])
    delta = np.where(moving, home - q, 0.0)
    largest = float(np.abs(delta).max())
    if largest <= tolerance_rad:
        return None
    n = int(np.ceil(largest / (speed_rad_s / rate_hz)))
    fraction = np.arange(1, n + 1)[:, None] / n  # (N, 1)
    return JointTrajectory(
        joint_names=tuple(joint_names),
        positions_rad=q[None, :] + fraction * delta[None, :],
        time_from_start_s=np.arange(1, n + 1) / rate_hz,
        metadata={"kind": "return_home"},
    )


def sample_at_rate(
    trajectory: JointTrajectory,
    start_rad: np.ndarray,  # (J,) where the arm is when the trajectory starts (t = 0)
    rate_hz: float,
    interpolation: Interpolation = "spline",
) -> np.ndarray:
    """Targets at each control tick k / rate_hz, k = 1 .. ceil(duration * rate_hz).

    Sampled as the arm nodes' controller samples it (``executor_core.trajectory_control``,
    the joint_trajectory_controller's rules): from ``start_rad`` at rest at t = 0 through
    the points, ``spline`` (their default: cubic Hermite segments, the points' velocities
    where given, monotone slopes otherwise, rest at the end) or ``linear``; the last tick
    holds the last point. A trajectory whose points already lie on the ticks (an IDM chunk
    at the controller's rate) comes back unchanged either way. Returns (N, J) float64.
    """
    require_positive("rate_hz", rate_hz)
    start = np.asarray(start_rad, dtype=np.float64)
    if start.shape != (len(trajectory.joint_names),):
        raise ValueError(f"start_rad must be ({len(trajectory.joint_names)},), got {start.shape!r}")
    unchecked = np.full(start.shape, np.inf)
    active = make_active(
        trajectory.positions_rad,
        trajectory.time_from_start_s,
        0.0,
        start,
        unchecked,
        unchecked,
        np.inf,
        velocities_rad_s=trajectory.velocities_rad_s,
        interpolation=interpolation,
    )
    n = max(1, int(np.ceil(trajectory.duration_s * rate_hz - 1e-9)))
    ticks = np.minimum(np.arange(1, n + 1) / rate_hz, active.end_s)
    return np.stack([active.desired(t) for t in ticks])
