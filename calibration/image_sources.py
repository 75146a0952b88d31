"""Images for calibration from a folder or a video file (the live topic is a ROS node)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


def iter_images(source: str | Path, every_nth: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, (H, W) uint8 grey image) from a folder (sorted) or a video file."""
    source = Path(source)
    if every_nth < 1:
        raise ValueError(f"every_nth must be >= 1, got {every_nth!r}")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {source}")
        for path in files[::every_nth]:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f"cannot decode image {path}")
            yield path.name, image
        return
    if not source.is_file():
        raise FileNotFoundError(f"calibration source not found: {source}")
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ValueError(f"cannot open {source} as a video (and it is not a folder)")
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every_nth == 0:
                yield f"{source.name}#{index:06d}", cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise ValueError(f"video {source} has no decodable frames")
