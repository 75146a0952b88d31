from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.camera_info_io import CameraInfoData, load_camera_info, save_camera_info

# Exactly what ROS's camera_calibration writes (ost.yaml), comments and all.
ROS_WRITTEN = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [423.7312, 0.     , 318.9014,
         0.     , 424.1158, 241.3380,
         0.     , 0.     , 1.     ]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.305417, 0.084622, -0.000339, 0.001012, 0.000000]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1., 0., 0.,
         0., 1., 0.,
         0., 0., 1.]
projection_matrix:
  rows: 3
  cols: 4
  data: [317.6215, 0.     , 319.4536, 0.     ,
         0.     , 371.1442, 242.0381, 0.     ,
         0.     , 0.     , 1.     , 0.     ]
"""


def test_reads_file_written_by_ros_camera_calibration(tmp_path: Path) -> None:
    path = tmp_path / "ost.yaml"
    path.write_text(ROS_WRITTEN)
    info = load_camera_info(path)
    assert info.image_size_px == (640, 480)
    assert info.camera_name == "narrow_stereo"
    assert info.fx_px == pytest.approx(423.7312)
    assert info.cy_px == pytest.approx(241.3380)
    np.testing.assert_allclose(
        info.distortion_coefficients, [-0.305417, 0.084622, -0.000339, 0.001012, 0.0]
    )
    assert info.projection_matrix[1, 1] == pytest.approx(371.1442)
    np.testing.assert_array_equal(info.rectification_matrix, np.eye(3))


def test_round_trip_is_exact_and_keeps_ros_layout(tmp_path: Path) -> None:
    path = tmp_path / "ost.yaml"
    path.write_text(ROS_WRITTEN)
    info = load_camera_info(path)
    out = save_camera_info(info, tmp_path / "copy" / "cam.yaml")
    again = load_camera_info(out)
    for name in ("camera_matrix", "distortion_coefficients", "projection_matrix"):
        np.testing.assert_array_equal(getattr(again, name), getattr(info, name))
    text = out.read_text()
    keys = [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")]
    assert keys == [
        "image_width", "image_height", "camera_name", "camera_matrix", "distortion_model",
        "distortion_coefficients", "rectification_matrix", "projection_matrix",
    ]  # fmt: skip
    assert "  data: [423.7312, 0.0, 318.9014" in text
    assert not list(out.parent.glob(".*.tmp")), "temporary file left behind"


def test_msg_fields_use_sensor_msgs_names(tmp_path: Path) -> None:
    path = tmp_path / "ost.yaml"
    path.write_text(ROS_WRITTEN)
    fields = load_camera_info(path).as_msg_fields()
    assert fields["width"] == 640
    assert fields["height"] == 480
    assert len(fields["k"]) == 9
    assert len(fields["r"]) == 9
    assert len(fields["p"]) == 12
    assert fields["k"][2] == pytest.approx(318.9014)
    assert fields["d"][0] == pytest.approx(-0.305417)


def test_missing_projection_defaults_to_k(tmp_path: Path) -> None:
    text = ROS_WRITTEN.split("rectification_matrix:")[0]
    path = tmp_path / "minimal.yaml"
    path.write_text(text)
    info = load_camera_info(path)
    np.testing.assert_array_equal(info.projection_matrix[:, :3], info.camera_matrix)


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("cols: 5", "cols: 4", "says 1x4"),
        ("plumb_bob", "kannala", "kannala"),
        ("image_width: 640", "image_width: 0", "image size"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, replace: str, by: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(ROS_WRITTEN.replace(replace, by, 1))
    with pytest.raises(ValueError, match=message):
        load_camera_info(path)


def test_missing_file_and_opencv_storage_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        load_camera_info(tmp_path / "nope.yaml")
    path = tmp_path / "cv.yaml"
    path.write_text("%YAML:1.0\n---\ncamera_matrix: !!opencv-matrix\n")
    with pytest.raises(ValueError, match="OpenCV FileStorage"):
        load_camera_info(path)


def test_wrong_coefficient_count_is_refused() -> None:
    with pytest.raises(ValueError, match="takes"):
        CameraInfoData(
            640, 480, "c", np.eye(3), "plumb_bob", np.ones(3), np.eye(3), np.zeros((3, 4))
        )
