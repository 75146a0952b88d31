"""Bounded recording of camera frames for the executed-task video (pure, no ROS).

executor_node records what the camera sees while a trajectory executes and is verified.
Frames are taken at most at ``fps`` (by arrival time). Memory stays bounded for a long
goal on a large camera: once ``max_frames`` are held, every other frame is dropped and the
minimum period doubles, so the video still covers the whole segment, just more sparsely.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from executor_core.config_cli import require_positive

logger = logging.getLogger(__name__)


class FrameRecorder:
    """Collects (H, W, 3) uint8 frames between :meth:`start` and :meth:`stop`.

    Thread-safe: the camera callback calls :meth:`add`, the goal's worker the rest.
    """

    def __init__(self, fps: float, max_frames: int = 600) -> None:
        require_positive("fps", fps)
        if max_frames < 2:
            raise ValueError(f"max_frames must be >= 2, got {max_frames!r}")
        self.fps = float(fps)
        self.max_frames = int(max_frames)
        self._lock = threading.Lock()
        self._recording = False
        self._frames: list[np.ndarray] = []
        self._times_s: list[float] = []
        self._period_s = 1.0 / self.fps
        self._due_s = 0.0

    def start(self) -> None:
        """Forget earlier frames and record from now on."""
        with self._lock:
            self._frames, self._times_s = [], []
            self._period_s = 1.0 / self.fps
            self._recording = True

    def add(self, frame_rgb: np.ndarray, t_s: float) -> bool:
        """Keep ``frame_rgb`` (arrival time ``t_s``, seconds) if recording and due; True if kept."""
        with self._lock:
            if not self._recording:
                return False
            # Frames are due on a fixed schedule, so the rate does not drift; the slack
            # keeps a camera at exactly ``fps`` whose frames arrive a little early.
            if self._times_s and t_s < self._due_s - 0.2 * self._period_s:
                return False
            self._frames.append(frame_rgb)
            self._times_s.append(t_s)
            due_s = self._due_s + self._period_s
            # The first frame, or behind the schedule (a slower camera, a gap): restart
            # it from this frame rather than keep a burst of catch-up frames.
            self._due_s = due_s if len(self._frames) > 1 and due_s > t_s else t_s + self._period_s
            if len(self._frames) >= self.max_frames:
                self._frames, self._times_s = self._frames[::2], self._times_s[::2]
                self._period_s *= 2.0
                self._due_s = self._times_s[-1] + self._period_s
            return True

    def stop(self) -> tuple[np.ndarray | None, float]:
        """Stop recording; ((T, H, W, 3) uint8 frames or None if none, playback fps).

        The playback fps comes from the arrival times, so the video runs at the speed the
        arm moved even when the camera delivered fewer frames than ``fps``. Frames of a
        size other than the first one's (a camera reconfigured mid-goal) are dropped: one
        mp4 has one size.
        """
        with self._lock:
            frames, times_s = self._frames, self._times_s
            self._frames, self._times_s, self._recording = [], [], False
        if not frames:
            return None, self.fps
        shape = frames[0].shape
        kept = [(f, t) for f, t in zip(frames, times_s, strict=True) if f.shape == shape]
        if len(kept) < len(frames):
            logger.warning(
                "dropped %d recorded frame(s) whose size differs from %r",
                len(frames) - len(kept),
                shape,
            )
        video = np.stack([np.ascontiguousarray(f) for f, _ in kept])
        span_s = kept[-1][1] - kept[0][1]
        fps = (len(kept) - 1) / span_s if len(kept) > 1 and span_s > 0 else self.fps
        return video, fps
