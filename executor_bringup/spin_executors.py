"""The multi-threaded spin executor of our node processes and ROS tests.

rclpy's ``MultiThreadedExecutor`` (the Kilted wheels we run) hands a ready callback to its
thread pool as a ``Task`` and keeps the task in its list of tasks in progress. Until a pool
thread has *started* it, the task is neither executing nor done, so the next
``wait_for_ready_callbacks`` yields it again without waiting, and it is submitted again,
and again (ros2/rclpy#1452, fixed upstream after our wheels by ros2/rclpy#1547). While the
spinning thread loops it holds the GIL, so the pool threads take longer to start the task,
so the loop runs longer: on a loaded 2-core machine it runs away. Measured here: the
executor node of the SO-101 graph spun a core at 93 % with one image callback re-submitted
for over a second, its callbacks ran seconds late, and the graph's readiness waits timed
out (fresh-clone CI failed on it).

The same executor has a second loop. A subscription whose callback has been handed out
leaves the wait set until the callback takes its message, but the subscription's QoS event
handlers (rclpy gives every subscription some by default) stay in it, and the middleware
then reports the wait set ready at once, again and again, while the message is unread:
about 10,000 empty waits a second, a core, whenever a callback waits for a pool thread
(``benchmarks/bench_spin_executor.py``; none with the event handlers off).

And a third defect: an entity destroyed by another thread while the wait loop builds or
reads its wait set ends the spin. The loop lists the node's entities, then enters each;
one destroyed between the two is skipped when entered, but a QoS event handler's
``add_to_wait_set`` then raises ``InvalidHandle`` out of ``spin`` (ros2/rclpy#1206, open).
executor_node's goal recording makes three subscriptions when a goal starts and destroys
them from the goal's worker when it ends: fresh-clone CI saw executor_node die so, at the
end of a canceled goal, and every later goal of the graph test went unanswered.

``QueueSafeMultiThreadedExecutor`` marks a task as taken when it is queued, so it is not
yielded again until a pool thread runs it, and keeps the entity's event handlers out of the
wait set until then; a task that is still pending after its run (a coroutine awaiting
something) is handed back to the wait loop as rclpy does, by waking it. A wait set that
lost an entity so is dropped and built again without it (``wait_sets_rebuilt`` counts
them); more than ``MAX_REBUILDS_IN_A_ROW`` in a row, with no pass between them that ended
otherwise, are not that race, and are raised.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from rclpy.exceptions import InvalidHandle
from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
)
from rclpy.task import Task

logger = logging.getLogger(__name__)

# Wait sets in a row that may lose a destroyed entity before the error is taken as real.
MAX_REBUILDS_IN_A_ROW = 100


class QueueSafeMultiThreadedExecutor(MultiThreadedExecutor):
    """``MultiThreadedExecutor`` that submits each ready task to its pool once and survives
    entities destroyed by other threads while it waits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wait_sets_rebuilt = 0  # wait sets dropped for an entity destroyed meanwhile
        self._rebuilds_in_a_row = 0

    def _spin_once_impl(
        self,
        timeout_sec: float | None = None,
        wait_condition: Callable[[], bool] = lambda: False,
    ) -> None:
        try:
            handler, entity, _node = self.wait_for_ready_callbacks(
                timeout_sec, None, wait_condition
            )
        except InvalidHandle:
            self._rebuild_wait_set()
            return
        except (
            ExternalShutdownException,
            ShutdownException,
            TimeoutException,
            ConditionReachedException,
        ):
            handler = None
        self._rebuilds_in_a_row = 0
        if handler is None:
            return
        # Hidden from the in-progress yield while it waits in the pool's queue; Task.__call__
        # does nothing while the flag is set, so the pool thread clears it first.
        handler._executing = True
        events = self._hide_event_handlers(entity)
        self._executor.submit(self._run_queued, handler, events)
        self._futures.append(handler)
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                try:
                    future.result()  # raise the callback's exception here, as rclpy does
                except InvalidHandle as exc:  # its entity was destroyed before it took its data
                    logger.warning("a callback's entity was destroyed under it: %s", exc)

    def _rebuild_wait_set(self) -> None:
        """Drop the wait loop that an entity destroyed meanwhile ended (ros2/rclpy#1206):
        the next pass lists the entities again, without it."""
        self._cb_iter = None
        self.wait_sets_rebuilt += 1
        self._rebuilds_in_a_row += 1
        if self._rebuilds_in_a_row > MAX_REBUILDS_IN_A_ROW and self._context.ok():
            raise RuntimeError(
                f"{self._rebuilds_in_a_row} wait sets in a row lost an entity: one is "
                "destroyed but still listed by its node"
            )
        logger.debug("an entity was destroyed while the wait set was built; building it again")

    @staticmethod
    def _hide_event_handlers(entity: object) -> list[Any]:
        """The entity's QoS event handlers that were in the wait set, now kept out of it."""
        hidden = [h for h in getattr(entity, "event_handlers", ()) if not h._executor_event]
        for event_handler in hidden:
            event_handler._executor_event = True
        return hidden

    def _run_queued(self, task: Task[Any], events: list[Any]) -> None:
        task._executing = False
        try:
            task()
        finally:
            for event_handler in events:
                event_handler._executor_event = False
        if (events or not task.done()) and self._guard is not None:
            # Rebuild the wait set with the event handlers, and resume a coroutine that is
            # still awaiting (unless the executor was shut down meanwhile).
            with contextlib.suppress(InvalidHandle):
                self._guard.trigger()
