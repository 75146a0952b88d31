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

``QueueSafeMultiThreadedExecutor`` marks a task as taken when it is queued, so it is not
yielded again until a pool thread runs it, and keeps the entity's event handlers out of the
wait set until then; a task that is still pending after its run (a coroutine awaiting
something) is handed back to the wait loop as rclpy does, by waking it.
"""

from __future__ import annotations

import contextlib
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


class QueueSafeMultiThreadedExecutor(MultiThreadedExecutor):
    """``MultiThreadedExecutor`` that submits each ready task to its pool once."""

    def _spin_once_impl(
        self,
        timeout_sec: float | None = None,
        wait_condition: Callable[[], bool] = lambda: False,
    ) -> None:
        try:
            handler, entity, _node = self.wait_for_ready_callbacks(
                timeout_sec, None, wait_condition
            )
        except (
            ExternalShutdownException,
            ShutdownException,
            TimeoutException,
            ConditionReachedException,
        ):
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
                future.result()  # raise the callback's exception here, as rclpy does

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
