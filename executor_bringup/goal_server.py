"""The ExecuteTask action of a node that runs goals on one worker thread, one at a time.

``executor_node`` (a video model and the IDM) and ``policy_node`` (a LeRobot policy) serve
the same action and differ only in how a goal runs; this is the rest, written once:

- A goal is rejected when the node is not accepting (``accepting()``: a lifecycle node
  that is not active), when its ``task_prompt`` is empty or longer than
  ``max_prompt_chars()`` characters (logged with its length; nothing is cut), when its
  ``timeout_s`` is negative or not finite or its ``max_replans`` is below -1 (the action's
  "default" values are 0 and -1; any other is a bad value, logged, never read as the
  default), and while another goal runs.
- An accepted goal goes on a queue; the worker thread runs ``run_goal(job)`` (inference and
  motion) while the goal's execute callback only waits for its result, so the spin
  executor keeps taking messages.
- The outcome becomes the result (success, message, replans used, the last trajectory),
  the recording is closed (the result then carries its path) and the goal handle ends:
  succeeded; canceled when a cancel was requested; else aborted, with the reason logged.
- A goal that raises is aborted naming the exception; the worker goes on with the next.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from executor_interfaces.action import ExecuteTask
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node

from executor_bringup.goal_recording import GoalRecording
from executor_bringup.trajectory_conversion import trajectory_to_msg
from executor_core.goal_runner import GoalResult


def bad_goal_budget(timeout_s: float, max_replans: int) -> str:
    """Why a goal's budget fields are bad ("" when they are fine; 0 and -1: the defaults)."""
    if not (math.isfinite(timeout_s) and timeout_s >= 0):
        return f"timeout_s must be finite and >= 0 (0: the node's default), got {timeout_s!r}"
    if max_replans < -1:
        return f"max_replans must be >= -1 (-1: the node's default), got {max_replans!r}"
    return ""


@dataclass
class Job:
    """One accepted goal, from its execute callback to the worker and back."""

    goal_handle: object
    done: threading.Event = field(default_factory=threading.Event)
    result: ExecuteTask.Result = field(default_factory=ExecuteTask.Result)


class GoalServer:
    """``execute_task`` on ``node``, its goals run by ``run_goal`` on one worker thread."""

    def __init__(
        self,
        node: Node,
        run_goal: Callable[[Job], GoalResult],
        recording: GoalRecording,
        callback_group: CallbackGroup,
        max_prompt_chars: Callable[[], int],
        accepting: Callable[[], bool] = lambda: True,
    ) -> None:
        self._node, self._run_goal, self._recording = node, run_goal, recording
        self._max_prompt_chars, self._accepting = max_prompt_chars, accepting
        self._busy, self._busy_lock = False, threading.Lock()
        self.stopped = False
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="goal_worker", daemon=True)
        self._worker.start()
        self._server = ActionServer(
            node,
            ExecuteTask,
            "execute_task",
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=callback_group,
        )

    def _on_goal(self, goal: ExecuteTask.Goal) -> GoalResponse:
        prompt, log = goal.task_prompt, self._node.get_logger()
        if not self._accepting():
            log.error(f"rejected goal {prompt[:60]!r}: the node is not active")
            return GoalResponse.REJECT
        if len(prompt) > (limit := int(self._max_prompt_chars())):
            log.error(
                f"rejected goal: task_prompt has {len(prompt)} characters, more than "
                f"max_prompt_chars {limit} (it starts {prompt[:60]!r})"
            )
            return GoalResponse.REJECT
        if not prompt.strip():
            log.error(f"rejected goal: empty task_prompt {prompt!r}")
            return GoalResponse.REJECT
        if why := bad_goal_budget(goal.timeout_s, goal.max_replans):
            log.error(f"rejected goal {prompt[:60]!r}: {why}")
            return GoalResponse.REJECT
        with self._busy_lock:
            if self._busy:
                log.warning(f"rejected goal {prompt!r}: another goal is running")
                return GoalResponse.REJECT
            self._busy = True
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle: object) -> ExecuteTask.Result:
        job = Job(goal_handle)
        self._jobs.put(job)
        job.done.wait()
        return job.result

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self.finish(job, self._run_goal(job))
            except Exception as exc:  # a bug must not kill the worker or hang the goal
                self._node.get_logger().error(f"goal failed with an exception: {exc!r}")
                job.result.success, job.result.message = False, f"internal error: {exc!r}"
                self._recording.end(job.result, "aborted")
                job.goal_handle.abort()
            finally:
                with self._busy_lock:
                    self._busy = False
                job.done.set()

    def finish(self, job: Job, outcome: GoalResult) -> None:
        """Put ``outcome`` into the job's result, close the recording, end the goal."""
        result, gh = job.result, job.goal_handle
        result.success, result.message = outcome.success, outcome.message
        result.replans_used = outcome.replans_used
        if (last := outcome.last_trajectory) is not None:
            result.trajectory = trajectory_to_msg(last)
        self._recording.end(result, outcome.status)  # sets result.recording_path
        if outcome.status == "succeeded":
            gh.succeed()
        elif outcome.status == "canceled" and gh.is_cancel_requested:
            gh.canceled()
        else:  # aborted, or stopped without a cancel request (a lifecycle deactivation)
            self._node.get_logger().error(f"goal aborted: {outcome.message}")
            gh.abort()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after its current goal (daemon: abandoned after ``timeout_s``)."""
        self.stopped = True
        self._jobs.put(None)
        self._worker.join(timeout=timeout_s)
        if self._worker.is_alive():
            self._node.get_logger().warning(f"worker still busy after {timeout_s} s; abandoning it")

    def destroy(self) -> None:
        self._server.destroy()
