"""sensor_msgs/Image <-> numpy without cv_bridge.

The functions take any object with the Image fields (``height, width, encoding, step,
is_bigendian, data``), so they are unit-tested without ROS and used on real messages.
Decoding is zero-copy: the array is a view on the message buffer (rows with padding are
viewed with strides), so a 640x480 frame costs no copy until a model resizes it. A
message whose size fields disagree with its data is rejected with
:class:`ImageConversionError` naming the field and value; it is never guessed at.
"""

from __future__ import annotations

import array
import logging
import sys
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)


class ImageConversionError(ValueError):
    """A malformed or unsupported image message."""


@dataclass(frozen=True)
class EncodingSpec:
    dtype: np.dtype
    channels: int


ENCODINGS: dict[str, EncodingSpec] = {
    "rgb8": EncodingSpec(np.dtype(np.uint8), 3),
    "bgr8": EncodingSpec(np.dtype(np.uint8), 3),
    "mono8": EncodingSpec(np.dtype(np.uint8), 1),
    "16UC1": EncodingSpec(np.dtype(np.uint16), 1),
}

_NATIVE_BIG_ENDIAN = sys.byteorder == "big"


class ImageLike(Protocol):
    height: int
    width: int
    encoding: str
    step: int
    is_bigendian: int
    data: Any


def image_to_array(msg: ImageLike) -> np.ndarray:
    """Decode an Image message -> (H, W, C) array in the message's own encoding.

    uint8 encodings give (H, W, 3) or (H, W, 1) views on ``msg.data``; 16UC1 gives
    (H, W, 1) uint16 (a byte-swapped copy only when the message endianness is foreign).
    """
    spec = ENCODINGS.get(msg.encoding)
    if spec is None:
        raise ImageConversionError(
            f"unsupported encoding {msg.encoding!r}; supported: {sorted(ENCODINGS)}"
        )
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image size must be > 0, got {width}x{height}")
    pixel_bytes = spec.dtype.itemsize * spec.channels
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width {width} x {pixel_bytes} bytes per "
            f"{msg.encoding} pixel = {row_bytes}"
        )
    if step % spec.dtype.itemsize:
        raise ImageConversionError(
            f"step {step} is not a multiple of the {msg.encoding} sample size {spec.dtype.itemsize}"
        )
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size != step * height:
        raise ImageConversionError(
            f"data has {buf.size} bytes, expected step {step} x height {height} = {step * height}"
        )
    dtype = spec.dtype
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    base = buf.view(dtype)  # step is a multiple of the sample size, checked above
    if step == row_bytes:
        out = base.reshape(height, width, spec.channels)
    else:
        # Row padding: a strided view skips it without copying.
        out = np.lib.stride_tricks.as_strided(
            base,
            shape=(height, width, spec.channels),
            strides=(step, pixel_bytes, dtype.itemsize),
            writeable=False,
        )
    if dtype.itemsize > 1 and bool(msg.is_bigendian) != _NATIVE_BIG_ENDIAN:
        out = out.astype(dtype.newbyteorder("="))
    return out


def image_to_rgb8(msg: ImageLike) -> np.ndarray:
    """Decode to (H, W, 3) uint8 RGB for the models (rgb8, bgr8 or mono8 input)."""
    arr = image_to_array(msg)
    if msg.encoding == "rgb8":
        return arr
    if msg.encoding == "bgr8":
        return arr[..., ::-1]
    if msg.encoding == "mono8":
        return np.repeat(arr, 3, axis=2)
    raise ImageConversionError(
        f"encoding {msg.encoding!r} has no RGB meaning (depth?); expected rgb8, bgr8 or mono8"
    )


@dataclass
class ImageFields:
    """What :func:`array_to_image_fields` fills into an Image message."""

    height: int
    width: int
    encoding: str
    step: int
    is_bigendian: int
    data: array.array


def array_to_image_fields(image: np.ndarray, encoding: str) -> ImageFields:
    """(H, W, C) or (H, W) array -> Image message fields (one copy into the message)."""
    spec = ENCODINGS.get(encoding)
    if spec is None:
        raise ImageConversionError(
            f"unsupported encoding {encoding!r}; supported: {sorted(ENCODINGS)}"
        )
    arr = image[..., None] if image.ndim == 2 else image
    if arr.ndim != 3 or arr.shape[2] != spec.channels:
        raise ImageConversionError(
            f"{encoding} needs (H, W, {spec.channels}), got shape {image.shape!r}"
        )
    if arr.dtype != spec.dtype:
        raise ImageConversionError(
            f"{encoding} needs dtype {spec.dtype}, got {arr.dtype!r} (convert explicitly)"
        )
    arr = np.ascontiguousarray(arr)
    height, width = arr.shape[:2]
    data = array.array("B")
    data.frombytes(arr.reshape(-1).view(np.uint8))
    return ImageFields(
        height=height,
        width=width,
        encoding=encoding,
        step=width * spec.channels * spec.dtype.itemsize,
        is_bigendian=int(_NATIVE_BIG_ENDIAN and spec.dtype.itemsize > 1),
        data=data,
    )


def fill_image_msg(msg: Any, image: np.ndarray, encoding: str) -> Any:
    """Fill a sensor_msgs/Image (or look-alike) in place; returns it."""
    fields = array_to_image_fields(image, encoding)
    msg.height, msg.width = fields.height, fields.width
    msg.encoding, msg.step, msg.is_bigendian = fields.encoding, fields.step, fields.is_bigendian
    msg.data = fields.data
    return msg
