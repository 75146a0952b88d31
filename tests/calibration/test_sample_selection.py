from __future__ import annotations

import numpy as np
import pytest

from calibration.sample_selection import CoverageSelector, SelectionOptions, view_parameters
from calibration.targets import Detection, TargetSpec


def _view(target: TargetSpec, centre_px, scale_px_per_m: float, shear: float = 0.0) -> Detection:
    board = target.corner_points_m()
    xy = board[:, :2] - board[:, :2].mean(axis=0)
    affine = np.array([[1.0, shear], [0.0, 1.0 - shear]]) * scale_px_per_m
    image = xy @ affine.T + np.asarray(centre_px)
    return Detection(
        board.astype(np.float32), image.astype(np.float32), (640, 480), np.arange(len(board))
    )


def test_view_parameters_measure_position_size_and_skew(charuco_target) -> None:
    params = view_parameters(_view(charuco_target, (320, 240), 1000.0))
    np.testing.assert_allclose(params[:2], [0.5, 0.5], atol=1e-6)
    # 6x4 corner grid of 0.03 m at 1000 px/m: 150 x 90 px of 640 x 480.
    assert params[2] == pytest.approx(np.sqrt(150 * 90 / (640 * 480)), rel=1e-3)
    assert params[3] == pytest.approx(0.0, abs=1e-6)
    assert view_parameters(_view(charuco_target, (320, 240), 1000.0, shear=0.4))[3] > 0.3


def test_selector_keeps_still_and_new_views_only(charuco_target) -> None:
    selector = CoverageSelector(SelectionOptions(min_samples=3, max_samples=5))
    a = _view(charuco_target, (200, 150), 1000.0)
    assert not selector.offer(a, "a0")  # first frame: motion unknown
    assert selector.offer(a, "a1")
    assert not selector.offer(a, "a2")  # same view again
    moved = _view(charuco_target, (450, 330), 1000.0)
    assert not selector.offer(moved, "m0")  # jumped 220 px: motion blur
    assert selector.offer(moved, "m1")
    assert not selector.offer(None)  # target lost resets the motion check
    far = _view(charuco_target, (320, 240), 2500.0, shear=0.5)
    assert not selector.offer(far, "f0")
    assert selector.offer(far, "f1")
    assert selector.kept_names == ["a1", "m1", "f1"]
    progress = selector.progress()
    assert progress["x"] == pytest.approx(min(1.0, (250 / 640) / 0.5))
    assert progress["skew"] == 1.0
    assert selector.is_ready == all(v >= 1.0 for v in progress.values())


def test_selection_options_validate() -> None:
    with pytest.raises(ValueError, match="min_samples"):
        SelectionOptions(min_samples=10, max_samples=5)
    with pytest.raises(ValueError, match="target_spread"):
        SelectionOptions(target_spread=(0.5, 0.5, 0.3))
