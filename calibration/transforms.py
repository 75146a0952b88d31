"""Rigid transforms as (4, 4) numpy arrays: inverse, quaternions (ROS's x, y, z, w order),
angles and the average of several rotations."""

from __future__ import annotations

import cv2
import numpy as np


def make_pose(rotation: np.ndarray, translation_m: np.ndarray) -> np.ndarray:
    """(4, 4) from a (3, 3) rotation matrix or a (3,) rotation vector, and (3,) metres."""
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.size == 3:
        rotation = cv2.Rodrigues(rotation.reshape(3))[0]
    if rotation.shape != (3, 3):
        raise ValueError(f"rotation must be (3, 3) or (3,), got {rotation.shape!r}")
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = np.asarray(translation_m, dtype=np.float64).reshape(3)
    return pose


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform (exact, no general matrix inverse)."""
    out = np.eye(4)
    out[:3, :3] = pose[:3, :3].T
    out[:3, 3] = -pose[:3, :3].T @ pose[:3, 3]
    return out


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """Angle of a (3, 3) rotation, degrees in [0, 180]."""
    cos = np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)))


def quaternion_xyzw_from_rotation(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (4,) unit quaternion x, y, z, w with w >= 0."""
    m = np.asarray(rotation, dtype=np.float64)
    # Largest-diagonal branch keeps the division well conditioned for every rotation.
    trace = np.trace(m)
    if trace > max(m[0, 0], m[1, 1], m[2, 2]):
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] >= m[1, 1] and m[0, 0] >= m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] >= m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def rotation_from_quaternion_xyzw(quaternion_xyzw: np.ndarray) -> np.ndarray:
    """(4,) x, y, z, w (normalised here; a zero quaternion is an error) -> (3, 3)."""
    q = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(-1)
    norm = np.linalg.norm(q) if q.shape == (4,) else 0.0
    if not norm > 1e-9:
        raise ValueError(f"expected a non-zero quaternion x, y, z, w, got {q.tolist()!r}")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def mean_pose(poses: list[np.ndarray]) -> np.ndarray:
    """Average of (4, 4) poses: mean translation, chordal mean rotation (SVD projection)."""
    if not poses:
        raise ValueError("mean_pose of no poses")
    stacked = np.asarray(poses)
    u, _, vt = np.linalg.svd(stacked[:, :3, :3].sum(axis=0))
    rotation = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    return make_pose(rotation, stacked[:, :3, 3].mean(axis=0))
