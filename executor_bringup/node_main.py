"""The one ``main`` of our node processes: transports, rclpy, spin, orderly shutdown.

With it, the ``main`` of a node module is two lines::

    def main(args: list[str] | None = None) -> None:
        run_node(SafetyNode, num_threads=4, args=args)

What it does, in order: the Fast DDS transport default (before ``rclpy.init``: every
process of the graph must agree), ``rclpy.init``, the node (a ``ValueError`` or
``FileNotFoundError`` from its constructor, i.e. a bad parameter or a missing file, is
logged and ends the process with status 2), spinning until Ctrl-C / SIGINT or an external
shutdown, then ``on_shutdown(node)``, the spin executor, the node and the context. The
spin executor is called ``spin_executor`` here: "executor" is the video model.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node

from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.process_exit import exit_process_now
from executor_bringup.spin_executors import QueueSafeMultiThreadedExecutor

logger = logging.getLogger(__name__)

# Exit status of a node whose parameters or files are wrong (as the launcher's usage error).
EXIT_BAD_CONFIG = 2


def run_node[N: Node](
    make_node: Callable[[], N],
    *,
    num_threads: int = 1,
    on_shutdown: Callable[[N], object] | None = None,
    exit_process: bool = False,
    args: list[str] | None = None,
) -> None:
    """Run the node ``make_node()`` builds until shutdown, then clean up in order.

    ``num_threads``: 1 spins on a ``SingleThreadedExecutor``, more on a
    ``QueueSafeMultiThreadedExecutor`` (rclpy's, less its re-submission runaway) with that
    many threads. ``on_shutdown(node)`` runs first on
    the way out, while the node is still whole (stop threads that own resources).
    ``exit_process``: end the process with ``os._exit(0)`` once everything is released,
    skipping the seconds of interpreter teardown of torch / lerobot. ``args``: rclpy's
    command line (default ``sys.argv``).
    """
    apply_default_transports()  # before rclpy.init: every process must agree
    rclpy.init(args=args if args is not None else sys.argv)
    try:
        node = make_node()
    except (ValueError, FileNotFoundError) as exc:
        if not isinstance(exc, LifecycleStartError):  # that one's node logged the reason
            logger.error("%s", exc)
        rclpy.try_shutdown()
        raise SystemExit(EXIT_BAD_CONFIG) from exc
    spin_executor = (
        SingleThreadedExecutor()
        if num_threads == 1
        else QueueSafeMultiThreadedExecutor(num_threads)
    )
    spin_executor.add_node(node)
    try:
        spin_executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if on_shutdown is not None:
            on_shutdown(node)
        spin_executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    if exit_process:
        exit_process_now(0)


class LifecycleStartError(ValueError):
    """A lifecycle transition at start-up failed; the node has logged why (one line)."""


def autostart_or_fail(node: LifecycleNode) -> None:
    """Configure and activate a lifecycle node now (its ``autostart`` parameter).

    A failed transition raises :class:`LifecycleStartError`, so that :func:`run_node` ends the
    process with status 2 (the node's own log line names the reason) instead of leaving an
    unconfigured node spinning.
    """
    for name, transition in (
        ("configure", node.trigger_configure),
        ("activate", node.trigger_activate),
    ):
        if transition() != TransitionCallbackReturn.SUCCESS:
            raise LifecycleStartError(f"{node.get_name()}: autostart {name} failed")
