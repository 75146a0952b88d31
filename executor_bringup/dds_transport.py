"""One Fast DDS transport setting for every process of the stack.

Camera images need Fast DDS's ``LARGE_DATA`` builtin transports (shared memory for large
samples instead of UDP fragments): measured for 640x480 rgb8 at 30 Hz on a busy 2-core
host, the default transports delivered 7 Hz with 1284 drops, LARGE_DATA 29.97 Hz with
none. But a LARGE_DATA participant and a default one do not discover each other at all
(measured: zero messages, even joint_states), so every process that talks to the graph
must agree. Each of our entry points therefore applies the same default before
``rclpy.init`` (and the launcher passes it to its nodes); a value the user exported wins.

The default is Fast DDS's own ``DEFAULT``: with LARGE_DATA, 3 of 9 runs of the sim demo
on a loaded 2-core host lost discovery between two of the processes, against 4 of 4 (and
every CI run) with DEFAULT, and stock tools (``ros2 topic``, rviz) interoperate without an
export. The sim's camera is 64-128 px, far below where UDP fragmentation hurts. With a
real 640x480 camera at 30 Hz, export ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` for the
whole graph (and for the tools that watch it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

logger = logging.getLogger(__name__)

FASTDDS_TRANSPORTS_ENV = "FASTDDS_BUILTIN_TRANSPORTS"
FASTDDS_TRANSPORTS_DEFAULT = "DEFAULT"


def apply_default_transports(env: MutableMapping[str, str] | None = None) -> str:
    """Set ``FASTDDS_BUILTIN_TRANSPORTS`` to our default in ``env`` (default: this process's
    environment, before ``rclpy.init``) unless already set; returns the value in effect."""
    env = os.environ if env is None else env
    if not env.get(FASTDDS_TRANSPORTS_ENV):
        env[FASTDDS_TRANSPORTS_ENV] = FASTDDS_TRANSPORTS_DEFAULT
    return env[FASTDDS_TRANSPORTS_ENV]
