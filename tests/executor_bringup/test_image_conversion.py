"""image_conversion: exact pixel values, padding, endianness, malformed messages."""

from __future__ import annotations

import array
from types import SimpleNamespace

import numpy as np
import pytest

from executor_bringup.image_conversion import (
    ImageConversionError,
    array_to_image_fields,
    fill_image_msg,
    image_to_array,
    image_to_rgb8,
)


def _msg(height: int, width: int, encoding: str, step: int, data: bytes, big: int = 0):
    return SimpleNamespace(
        height=height,
        width=width,
        encoding=encoding,
        step=step,
        is_bigendian=big,
        data=array.array("B", data),
    )


def test_rgb8_roundtrip_is_zero_copy_view() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    fields = array_to_image_fields(img, "rgb8")
    assert (fields.height, fields.width, fields.step, fields.is_bigendian) == (2, 3, 9, 0)
    out = image_to_rgb8(fields)
    np.testing.assert_array_equal(out, img)
    assert np.shares_memory(out, np.frombuffer(fields.data, np.uint8))


def test_bgr8_and_mono8_to_rgb() -> None:
    bgr = _msg(1, 2, "bgr8", 6, bytes([1, 2, 3, 4, 5, 6]))
    assert image_to_rgb8(bgr).tolist() == [[[3, 2, 1], [6, 5, 4]]]
    mono = _msg(2, 1, "mono8", 1, bytes([7, 9]))
    assert image_to_rgb8(mono).tolist() == [[[7, 7, 7]], [[9, 9, 9]]]


def test_row_padding_is_skipped() -> None:
    # width 2 mono8, step 4: two padding bytes (0xEE) per row must not leak into pixels.
    msg = _msg(2, 2, "mono8", 4, bytes([1, 2, 0xEE, 0xEE, 3, 4, 0xEE, 0xEE]))
    assert image_to_array(msg)[..., 0].tolist() == [[1, 2], [3, 4]]


def test_16uc1_both_endiannesses() -> None:
    little = _msg(1, 2, "16UC1", 4, bytes([0x34, 0x12, 0xFF, 0x00]), big=0)
    assert image_to_array(little)[..., 0].tolist() == [[0x1234, 0x00FF]]
    big = _msg(1, 2, "16UC1", 4, bytes([0x12, 0x34, 0x00, 0xFF]), big=1)
    assert image_to_array(big)[..., 0].tolist() == [[0x1234, 0x00FF]]
    with pytest.raises(ImageConversionError, match="no RGB meaning"):
        image_to_rgb8(little)
    depth = np.array([[1000, 65535]], dtype=np.uint16)
    msg = fill_image_msg(SimpleNamespace(), depth, "16UC1")
    assert msg.step == 4
    assert image_to_array(msg)[..., 0].tolist() == [[1000, 65535]]


@pytest.mark.parametrize(
    ("height", "width", "encoding", "step", "nbytes", "match"),
    [
        (2, 2, "rgb8", 5, 10, "step 5 is smaller than width 2 x 3 bytes"),
        (2, 2, "rgb8", 6, 11, "data has 11 bytes, expected step 6 x height 2 = 12"),
        (2, 2, "yuv422", 4, 8, "unsupported encoding 'yuv422'"),
        (0, 2, "mono8", 2, 0, "image size must be > 0, got 2x0"),
        (1, 2, "16UC1", 5, 5, "step 5 is not a multiple"),
    ],
)
def test_malformed_rejected(
    height: int, width: int, encoding: str, step: int, nbytes: int, match: str
) -> None:
    with pytest.raises(ImageConversionError, match=match):
        image_to_array(_msg(height, width, encoding, step, bytes(nbytes)))


def test_encode_rejects_wrong_dtype_or_channels() -> None:
    with pytest.raises(ImageConversionError, match="needs dtype uint8"):
        array_to_image_fields(np.zeros((2, 2, 3), np.float32), "rgb8")
    with pytest.raises(ImageConversionError, match=r"needs \(H, W, 3\)"):
        array_to_image_fields(np.zeros((2, 2), np.uint8), "rgb8")


def test_real_sensor_msgs_image() -> None:
    from sensor_msgs.msg import Image

    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    msg = fill_image_msg(Image(), img, "bgr8")
    np.testing.assert_array_equal(image_to_rgb8(msg), img[..., ::-1])
