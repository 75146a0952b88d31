"""Calibration targets (checkerboard, ChArUco): geometry, detection, board texture.

A :class:`TargetSpec` says what is printed; :func:`detect_target` finds it in an image and
returns matched 3-D board points (metres, board frame, z = 0) and 2-D image points
(pixels). Checkerboards are symmetric, so their pose is ambiguous by 180 degrees; use
ChArUco wherever the pose matters (hand-eye).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from executor_core.config_cli import check_positive

logger = logging.getLogger(__name__)

TargetKind = Literal["checkerboard", "charuco"]
ARUCO_DICTIONARIES = ("DICT_4X4_50", "DICT_4X4_250", "DICT_5X5_100", "DICT_6X6_250")


@dataclass(frozen=True)
class TargetSpec:
    """What is printed. ``squares_x`` x ``squares_y`` counts squares (not inner corners).

    A checkerboard with 9 x 7 squares has 8 x 6 inner corners, ROS's ``--size 8x6``.
    """

    kind: TargetKind = "charuco"
    squares_x: int = 7
    squares_y: int = 5
    square_size_m: float = 0.03
    marker_size_m: float = 0.022  # ChArUco only
    aruco_dictionary: str = "DICT_4X4_50"  # ChArUco only

    def __post_init__(self) -> None:
        if self.kind not in ("checkerboard", "charuco"):
            raise ValueError(f"target kind must be 'checkerboard' or 'charuco', got {self.kind!r}")
        if self.squares_x < 3 or self.squares_y < 3:
            raise ValueError(
                f"a target needs at least 3x3 squares, got {self.squares_x!r}x{self.squares_y!r}"
            )
        check_positive(self, "square_size_m")
        if self.kind == "charuco":
            if not 0 < self.marker_size_m < self.square_size_m:
                raise ValueError(
                    f"marker_size_m must be in (0, square_size_m={self.square_size_m!r}), "
                    f"got {self.marker_size_m!r}"
                )
            if self.aruco_dictionary not in ARUCO_DICTIONARIES:
                raise ValueError(
                    f"aruco_dictionary {self.aruco_dictionary!r} not in {ARUCO_DICTIONARIES}"
                )

    @property
    def inner_corners(self) -> tuple[int, int]:
        """(columns, rows) of inner corners, OpenCV's ``patternSize``."""
        return self.squares_x - 1, self.squares_y - 1

    @property
    def num_corners(self) -> int:
        cols, rows = self.inner_corners
        return cols * rows

    @property
    def size_m(self) -> tuple[float, float]:
        """Printed extent (width, height) of the squared area, metres."""
        return self.squares_x * self.square_size_m, self.squares_y * self.square_size_m

    def corner_points_m(self) -> np.ndarray:
        """(num_corners, 3) float64 inner corners in the board frame, row-major from the
        corner next to the board's (0, 0) square; for ChArUco these are the charuco ids."""
        cols, rows = self.inner_corners
        grid = np.stack(np.meshgrid(np.arange(1, cols + 1), np.arange(1, rows + 1)), -1)
        xy = grid.reshape(-1, 2).astype(np.float64) * self.square_size_m
        if self.kind == "checkerboard":
            # findChessboardCorners numbers corners from the first inner corner; use the
            # same origin so object points start at (0, 0).
            xy -= self.square_size_m
        return np.hstack([xy, np.zeros((xy.shape[0], 1))])

    def charuco_board(self) -> cv2.aruco.CharucoBoard:
        if self.kind != "charuco":
            raise ValueError(f"charuco_board() on a {self.kind!r} target")
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.aruco_dictionary))
        return cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), self.square_size_m, self.marker_size_m, dictionary
        )

    def texture(self, px_per_square: int) -> np.ndarray:
        """(squares_y * s, squares_x * s) uint8 image of the squared area, no margin.

        Texture pixel (i, j) covers board coordinates [j, j+1) x [i, i+1) / s squares.
        The board origin (0, 0) is the texture's top-left corner.
        """
        s = int(px_per_square)
        if s < 8:
            raise ValueError(f"px_per_square must be >= 8, got {px_per_square!r}")
        width, height = self.squares_x * s, self.squares_y * s
        if self.kind == "charuco":
            return self.charuco_board().generateImage((width, height), marginSize=0, borderBits=1)
        # Top-left square is black, as in OpenCV's and ROS's printed checkerboards.
        ii, jj = np.indices((self.squares_y, self.squares_x))
        squares = np.where((ii + jj) % 2 == 0, 0, 255).astype(np.uint8)
        return np.kron(squares, np.ones((s, s), dtype=np.uint8))

    def texture_points_m(self) -> np.ndarray:
        """Board frame of :meth:`texture`: where the checkerboard's object point (0, 0)
        lies, in texture metres (the charuco frame already starts at the corner)."""
        if self.kind == "checkerboard":
            return np.array([self.square_size_m, self.square_size_m])
        return np.zeros(2)


@dataclass(frozen=True)
class Detection:
    """A target seen in one image: matched board and image points."""

    object_points_m: np.ndarray  # (N, 3) float32, board frame, metres
    image_points_px: np.ndarray  # (N, 2) float32, pixels
    image_size_px: tuple[int, int]  # (width, height)
    ids: np.ndarray  # (N,) int, corner indices into TargetSpec.corner_points_m()

    @property
    def num_points(self) -> int:
        return int(self.object_points_m.shape[0])


def _to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape!r}")


def _refine_saddles(
    gray: np.ndarray, points_px: np.ndarray, board_m: np.ndarray, target: TargetSpec
) -> np.ndarray:
    """Re-locate ChArUco corners on the image's saddle points.

    OpenCV 4.13's CharucoDetector returns corners about half a pixel off on clean renders;
    cornerSubPix, with a window inside the white gap around the corner, finds the saddle.
    """
    # Square size in pixels from the local homography scale: nearest board neighbours.
    if points_px.shape[0] >= 2:
        d_px = np.linalg.norm(points_px[:, None] - points_px[None], axis=-1)
        d_m = np.linalg.norm(board_m[:, None] - board_m[None], axis=-1)
        np.fill_diagonal(d_m, np.inf)
        nearest = np.argmin(d_m, axis=1)
        rows = np.arange(points_px.shape[0])
        square_px = float(np.median(d_px[rows, nearest] / d_m[rows, nearest])) * float(
            np.min(d_m[rows, nearest])
        )
    else:
        square_px = 12.0
    # The window must stay inside the white gap between a corner and the nearest markers,
    # whose edges would pull the saddle estimate.
    gap_fraction = (target.square_size_m - target.marker_size_m) / (2 * target.square_size_m)
    # Half the gap: tilted boards shrink it on one side.
    half = int(np.clip(np.floor(0.5 * gap_fraction * square_px), 2, 6))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-3)
    refined = cv2.cornerSubPix(
        gray,
        points_px.reshape(-1, 1, 2).astype(np.float32).copy(),
        (half, half),
        (-1, -1),
        criteria,
    )
    return refined.reshape(-1, 2)


def detect_target(
    image: np.ndarray, target: TargetSpec, min_points: int = 6, exhaustive: bool = False
) -> Detection | None:
    """Find ``target`` in an (H, W) or (H, W, 3) uint8 image; None when not found.

    A checkerboard must be seen whole; a ChArUco board may be partly visible, then only
    the interpolated corners with at least ``min_points`` points count. ``exhaustive``
    makes the checkerboard search slower and more thorough.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype!r}")
    gray = _to_gray(image)
    height, width = gray.shape
    board_points = target.corner_points_m()
    if target.kind == "checkerboard":
        # The sector-based detector is sub-pixel accurate and more robust to blur.
        # EXHAUSTIVE finds more boards in hard light but doubles the time per frame.
        flags = cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_ACCURACY
        if exhaustive:
            flags |= cv2.CALIB_CB_EXHAUSTIVE
        found, corners = cv2.findChessboardCornersSB(gray, target.inner_corners, flags=flags)
        if not found:
            return None
        ids = np.arange(target.num_corners)
        image_points = corners.reshape(-1, 2)
    else:
        detector = cv2.aruco.CharucoDetector(target.charuco_board())
        corners, charuco_ids, _, _ = detector.detectBoard(gray)
        if charuco_ids is None or len(charuco_ids) < min_points:
            return None
        ids = charuco_ids.reshape(-1).astype(np.int64)
        image_points = _refine_saddles(gray, corners.reshape(-1, 2), board_points[ids], target)
    return Detection(
        object_points_m=board_points[ids].astype(np.float32),
        image_points_px=image_points.astype(np.float32),
        image_size_px=(int(width), int(height)),
        ids=ids,
    )
