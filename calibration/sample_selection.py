"""Automatic choice of calibration views from a stream (video or live ``image_raw``).

A stream offers hundreds of near-identical frames; calibrating on all of them is slow and
weights the views the operator lingered on. Like ROS's camera_calibration, each detection
is summarised by where the target is (x, y), how big it looks (size) and how tilted it is
(skew), all in [0, 1]. A view is kept when it is still (not motion-blurred) and differs
from every kept view by at least ``min_distance`` (L1 over the four numbers). Coverage
is the spread of each number over the kept views against a target spread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.targets import Detection
from executor_core.config_cli import check_positive

logger = logging.getLogger(__name__)

PARAM_NAMES = ("x", "y", "size", "skew")


@dataclass(frozen=True)
class SelectionOptions:
    min_distance: float = 0.2  # L1 distance in (x, y, size, skew) to every kept view
    max_motion_px: float = 2.0  # mean corner motion since the previous frame
    min_samples: int = 15
    max_samples: int = 40
    target_spread: tuple[float, float, float, float] = (0.5, 0.5, 0.3, 0.3)  # x, y, size, skew

    def __post_init__(self) -> None:
        check_positive(self, "min_distance", "max_motion_px")
        if not 3 <= self.min_samples <= self.max_samples:
            raise ValueError(
                f"need 3 <= min_samples <= max_samples, got {self.min_samples!r}, "
                f"{self.max_samples!r}"
            )
        if len(self.target_spread) != 4 or not all(0 < s <= 1 for s in self.target_spread):
            raise ValueError(f"target_spread needs 4 values in (0, 1], got {self.target_spread!r}")


def view_parameters(detection: Detection) -> np.ndarray:
    """(4,) float: x, y (centre, fraction of the image), size (sqrt of the covered image
    fraction), skew (0 when the target faces the camera, towards 1 when seen edge-on)."""
    width, height = detection.image_size_px
    points = detection.image_points_px.astype(np.float64)
    x = float(points[:, 0].mean() / width)
    y = float(points[:, 1].mean() / height)
    hull = cv2.convexHull(points.astype(np.float32))
    size = float(np.sqrt(cv2.contourArea(hull) / (width * height)))
    # An affine fit board -> image; its singular values' ratio is the foreshortening.
    board = detection.object_points_m[:, :2].astype(np.float64)
    design = np.hstack([board, np.ones((board.shape[0], 1))])
    affine, *_ = np.linalg.lstsq(design, points, rcond=None)
    singular = np.linalg.svd(affine[:2], compute_uv=False)
    skew = float(1.0 - singular[1] / max(singular[0], 1e-12))
    return np.array([x, y, size, skew])


@dataclass
class CoverageSelector:
    """Feed detections in stream order; keeps the informative ones."""

    options: SelectionOptions = field(default_factory=SelectionOptions)
    kept: list[Detection] = field(default_factory=list)
    kept_names: list[str] = field(default_factory=list)
    _params: list[np.ndarray] = field(default_factory=list)
    _previous: Detection | None = None

    def _is_still(self, detection: Detection) -> bool:
        previous, self._previous = self._previous, detection
        if previous is None:
            return False  # cannot tell motion from a single frame
        common, i_prev, i_new = np.intersect1d(previous.ids, detection.ids, return_indices=True)
        if common.size < 4:
            return False
        motion = np.linalg.norm(
            previous.image_points_px[i_prev] - detection.image_points_px[i_new], axis=1
        )
        return bool(motion.mean() <= self.options.max_motion_px)

    def offer(self, detection: Detection | None, name: str = "") -> bool:
        """True when the view was kept."""
        if detection is None:
            self._previous = None
            return False
        if not self._is_still(detection) or len(self.kept) >= self.options.max_samples:
            return False
        params = view_parameters(detection)
        if self._params:
            distance = np.min(np.abs(np.asarray(self._params) - params).sum(axis=1))
            if distance < self.options.min_distance:
                return False
        self._params.append(params)
        self.kept.append(detection)
        self.kept_names.append(name or f"sample_{len(self.kept) - 1:04d}")
        logger.info("kept view %s %s", self.kept_names[-1], np.round(params, 3).tolist())
        return True

    def progress(self) -> dict[str, float]:
        """Per parameter, spread of kept views / target spread, capped at 1."""
        if not self._params:
            return dict.fromkeys(PARAM_NAMES, 0.0)
        params = np.asarray(self._params)
        spread = params.max(axis=0) - params.min(axis=0)
        ratio = np.minimum(spread / np.asarray(self.options.target_spread), 1.0)
        return {name: float(v) for name, v in zip(PARAM_NAMES, ratio, strict=True)}

    @property
    def is_ready(self) -> bool:
        if len(self.kept) >= self.options.max_samples:
            return True
        return len(self.kept) >= self.options.min_samples and all(
            v >= 1.0 for v in self.progress().values()
        )
