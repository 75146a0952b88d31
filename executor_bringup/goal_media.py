"""What a goal leaves behind and tells: feedback, imagined videos, executed videos.

``GoalMedia`` belongs to executor_node: it writes each imagined video (``<goal>_<k>.mp4``
in ``video_dir``) on a writer thread while the arm moves, and records the camera frames
received while a segment executes and is verified (at most ``executed_video_fps``; 0: off)
into ``<goal>_<k>_executed.mp4`` next to it. ``GoalFeedback`` is the goal runner's
observer for one goal: it publishes ExecuteTask feedback and fills the result's video paths;
it also hands the feedback and each imagined video to the goal's recording
(``executor_bringup.goal_recording``).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from executor_interfaces.action import ExecuteTask

from executor_bringup.frame_recorder import FrameRecorder
from executor_bringup.goal_recording import GoalRecording
from executor_core.config_cli import require_non_negative, require_positive
from executor_core.goal_runner import GoalObserver
from executor_core.video_io import save_video_mp4


class GoalMedia:
    def __init__(
        self, video_dir: Path, video_fps: float, executed_video_fps: float, log: object
    ) -> None:
        require_non_negative("executed_video_fps", executed_video_fps)  # 0: off
        require_positive("video_fps", video_fps)
        self.video_dir, self.video_fps, self.log = video_dir, video_fps, log
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video")
        self.recorder = FrameRecorder(executed_video_fps) if executed_video_fps > 0 else None

    def add_camera_frame(self, rgb: np.ndarray) -> None:
        """From the image callback: kept while a segment is being recorded."""
        if self.recorder is not None:
            self.recorder.add(rgb, time.monotonic())

    def save_imagined(self, video: np.ndarray, stem: str) -> Future:
        return self.writer.submit(
            save_video_mp4, video, self.video_dir / f"{stem}.mp4", self.video_fps
        )

    def start_recording(self) -> None:
        if self.recorder is not None:
            self.recorder.start()

    def save_executed(self, path: Path) -> str:
        """Stop recording and write the executed video; its path, or '' if none."""
        if self.recorder is None:
            return ""
        frames, fps = self.recorder.stop()
        if frames is None:
            self.log.warning(
                "no camera frame arrived while the segment executed: no executed video"
            )
            return ""
        try:
            return str(save_video_mp4(frames, path, fps))
        except (OSError, ValueError) as exc:
            # A by-product: it must not hide how the goal itself ended.
            self.log.error(f"could not write the executed video {path}: {exc}")
            return ""

    def shutdown(self) -> None:
        self.writer.shutdown(wait=True)


class GoalFeedback(GoalObserver):
    """One goal's feedback and video paths (the goal runner's observer)."""

    def __init__(
        self,
        media: GoalMedia,
        goal_handle: object,
        result: ExecuteTask.Result,
        recording: GoalRecording,
    ) -> None:
        self.media, self.goal_handle, self.result = media, goal_handle, result
        self.recording = recording
        self.start = time.monotonic()
        self.imagining_since: float | None = None  # when the video model was last asked
        self.last_plan_s = 0.0  # how long it took to imagine the latest segment
        self.stem = bytes(goal_handle.goal_id.uuid).hex()[:12]
        self.saving: Future | None = None

    def phase(self, phase: str, progress: float) -> None:
        now = time.monotonic()
        if phase == ExecuteTask.Feedback.PHASE_IMAGINING:
            self.imagining_since = now
        # A new message each time: the recording serializes it later, on its own thread.
        feedback = ExecuteTask.Feedback(
            phase=phase,
            progress=float(progress),
            elapsed_s=now - self.start,
            last_plan_s=self.last_plan_s,
        )
        self.goal_handle.publish_feedback(feedback)
        self.recording.feedback(feedback)

    def imagined(self, segment: int, video: np.ndarray) -> None:
        if self.imagining_since is not None:
            self.last_plan_s = time.monotonic() - self.imagining_since
        # Written while the arm moves: motion does not wait for the disk.
        self.saving = self.media.save_imagined(video, f"{self.stem}_{segment}")
        self.recording.imagined(video)

    def segment_started(self, segment: int) -> None:
        self.media.start_recording()

    def segment_ended(self, segment: int) -> None:
        if self.saving is None:
            return
        imagined = self.saving.result()
        self.result.imagined_video_path = str(imagined)
        executed = imagined.with_name(f"{imagined.stem}_executed.mp4")
        self.result.executed_video_path = self.media.save_executed(executed)
