"""An ActionClient that may be created on a node a multi-threaded executor is spinning."""

from __future__ import annotations

import threading

from rclpy.action import ActionClient


class SafeActionClient(ActionClient):
    """rclpy's ``ActionClient`` without its construction race.

    ``ActionClient.__init__`` (Kilted) registers the client with its node (``add_waitable``)
    before it creates its ``_lock``. An executor thread that polls the new waitable in
    between dies with ``AttributeError: 'ActionClient' object has no attribute '_lock'``, and
    nothing spins the node afterwards. That happens when a node creates a client while
    another thread spins it: policy_node does in its lifecycle ``configure`` on a
    multi-threaded executor (seen in CI: the test's goal then timed out). The class
    attribute bridges that window; ``__init__`` then gives the instance its own lock.
    """

    _lock = threading.Lock()
