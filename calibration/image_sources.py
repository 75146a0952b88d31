"""Images for calibration from a folder or a video file (the live topic is a ROS node).

A file in a folder that does not decode (corrupt, truncated, not an image despite its
suffix) is skipped with a warning that names it, and listed in
:attr:`ImageSource.unreadable`; the caller decides whether enough images remain
(:meth:`ImageSource.require`). A source that is neither a folder nor a readable video is a
:class:`~calibration.intrinsics.CalibrationError` naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from calibration.intrinsics import CalibrationError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


def read_grey(path: str | Path) -> np.ndarray | None:
    """(H, W) uint8 grey image, or None (with a warning naming the file) when it does not
    decode."""
    if not Path(path).is_file():
        logger.warning("skipping %s: no such file", path)
        return None
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        logger.warning("skipping %s: not a readable image (corrupt or not an image)", path)
    return image


class ImageSource:
    """Yields (name, (H, W) uint8 grey image) from a folder (sorted) or a video file."""

    def __init__(self, source: str | Path, every_nth: int = 1) -> None:
        if every_nth < 1:
            raise ValueError(f"every_nth must be >= 1, got {every_nth!r}")
        self.source = Path(source)
        self.every_nth = every_nth
        self.unreadable: list[str] = []  # names of the folder's files that did not decode
        self.num_read = 0
        if not self.source.exists():
            raise FileNotFoundError(f"calibration source not found: {self.source}")

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        if self.source.is_dir():
            yield from self._folder()
        else:
            yield from self._video()

    def _folder(self) -> Iterator[tuple[str, np.ndarray]]:
        files = sorted(p for p in self.source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.source}")
        for path in files[:: self.every_nth]:
            image = read_grey(path)
            if image is None:
                self.unreadable.append(path.name)
                continue
            self.num_read += 1
            yield path.name, image

    def _video(self) -> Iterator[tuple[str, np.ndarray]]:
        capture = cv2.VideoCapture(str(self.source))
        if not capture.isOpened():
            raise CalibrationError(
                f"{self.source} is neither a folder of images nor a readable video"
            )
        index = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if index % self.every_nth == 0:
                    self.num_read += 1
                    yield f"{self.source.name}#{index:06d}", cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                index += 1
        finally:
            capture.release()
        if index == 0:
            raise CalibrationError(
                f"{self.source} is neither a folder of images nor a video with decodable frames"
            )

    def require(self, minimum: int) -> None:
        """Raise :class:`CalibrationError` naming the source when fewer than ``minimum``
        images were read (after iterating)."""
        if self.num_read < minimum:
            skipped = f"; unreadable, skipped: {self.unreadable}" if self.unreadable else ""
            raise CalibrationError(
                f"{self.source}: {self.num_read} readable image(s), need at least "
                f"{minimum}{skipped}"
            )
