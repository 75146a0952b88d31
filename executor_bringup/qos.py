"""The QoS profiles of the graph, in one place so every node agrees.

- Sensor data (images, camera_info, joint_states): best-effort, keep-last, volatile. A
  late frame is worth less than the next one, and best-effort never stalls the publisher.
- Commands (trajectories, e-stop, heartbeat): reliable, keep-last, volatile. A dropped
  command is a safety problem; a stale one replayed to a late joiner is too (volatile).
- Status (SafetyStatus): reliable + transient local (latched), depth 1, so a monitor
  that starts late still sees the current e-stop state.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def sensor_qos(depth: int = 5) -> QoSProfile:
    """Best-effort keep-last(depth), depth 1..5."""
    if not 1 <= depth <= 5:
        raise ValueError(f"sensor QoS depth must be 1..5, got {depth!r}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


def command_qos(depth: int = 10) -> QoSProfile:
    """Reliable keep-last(depth), volatile."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def status_qos() -> QoSProfile:
    """Reliable, transient local (latched), keep-last(1)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
