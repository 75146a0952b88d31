from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from calib_truth import TRUE_FOCAL_PX

from calibration.camera_info_io import load_camera_info
from calibration.intrinsics_cli import PRESETS, main
from calibration.synthetic import TargetRenderer, random_board_poses

BOARD_ARGS = [
    "--target.kind=charuco",
    "--target.squares_x=7",
    "--target.squares_y=5",
    "--target.square_size_m=0.03",
    "--target.marker_size_m=0.018",
    "--options.radial_coefficients=2",
]


def test_cli_calibrates_a_folder_of_renders(tmp_path: Path, charuco_images, capsys) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(charuco_images):
        cv2.imwrite(str(folder / f"view_{i:02d}.png"), image)
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "cam" / "scene_camera.yaml"
    argv = ["--source", str(folder), f"--output={out}", "--camera_name=scene_camera", *BOARD_ARGS]
    assert main(argv) == 0
    info = load_camera_info(out)
    assert info.camera_name == "scene_camera"
    assert info.image_size_px == (320, 240)
    assert abs(info.fx_px / TRUE_FOCAL_PX - 1) < 0.005
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["rms_px"] < 0.3
    names = [p["name"] for p in report["per_image"]] + [r["name"] for r in report["rejected"]]
    assert sorted(names) == [f"view_{i:02d}.png" for i in range(len(charuco_images))]
    assert report["config"]["target"]["squares_x"] == 7
    assert "reprojection RMS" in capsys.readouterr().out


def test_cli_selects_views_from_a_video(tmp_path: Path, charuco_images) -> None:
    video = tmp_path / "wave.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    assert writer.isOpened()
    for image in charuco_images:
        for _ in range(4):  # the operator holds each pose for a moment
            writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    out = tmp_path / "cam.yaml"
    argv = [
        f"--source={video}",
        f"--output={out}",
        "--selection.min_samples=5",
        "--selection.max_samples=8",
        *BOARD_ARGS,
    ]
    assert main(argv) == 0
    report = json.loads(out.with_suffix(".report.json").read_text())
    used = [p["name"] for p in report["per_image"]]
    # Only still frames, one per held pose at most, never the first frame of a pose.
    assert 5 <= len(used) <= 8
    frame_numbers = [int(n.split("#")[1]) for n in used]
    assert len({f // 4 for f in frame_numbers}) == len(frame_numbers)
    assert all(f % 4 != 0 for f in frame_numbers)
    assert abs(load_camera_info(out).fx_px / TRUE_FOCAL_PX - 1) < 0.01


def test_cli_debug_preset(tmp_path: Path, small_camera) -> None:
    target = PRESETS["debug"].target
    renderer = TargetRenderer(small_camera, target, supersample=2)
    rng = np.random.default_rng(5)
    for i, pose in enumerate(
        random_board_poses(small_camera, target, 5, rng, fill_range=(0.5, 0.85))
    ):
        cv2.imwrite(str(tmp_path / f"{i}.png"), renderer.render(pose, noise_sigma=2.0, rng=rng))
    out = tmp_path / "out" / "debug.yaml"
    assert main(["--preset", "debug", f"--source={tmp_path}", f"--output={out}"]) == 0
    assert abs(load_camera_info(out).fx_px / TRUE_FOCAL_PX - 1) < 0.01


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--source is required"),
        (["--source=/nonexistent/dir"], "not found"),
        (["--target.kind=circles"], "circles"),
    ],
)
def test_cli_bad_input_exits_with_reason(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_images_without_target(tmp_path: Path, capsys) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((240, 320), 90, np.uint8))
    assert main([f"--source={tmp_path}", f"--output={tmp_path / 'c.yaml'}"]) == 2
    assert "target not found" in capsys.readouterr().err
    assert not (tmp_path / "c.yaml").exists()


def test_cli_skips_unreadable_images_and_names_them(
    tmp_path: Path, charuco_images, capsys, caplog
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(charuco_images):
        cv2.imwrite(str(folder / f"view_{i:02d}.png"), image)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    good = (folder / "view_00.png").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    out = tmp_path / "cam.yaml"
    with caplog.at_level("WARNING", logger="calibration.image_sources"):
        assert main(["--source", str(folder), f"--output={out}", *BOARD_ARGS]) == 0
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "corrupt.png" in warned
    assert "truncated.jpg" in warned
    assert out.is_file()
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert len(report["per_image"]) + len(report["rejected"]) == len(charuco_images)


def test_cli_too_few_readable_images_names_the_folder(tmp_path: Path, capsys) -> None:
    cv2.imwrite(str(tmp_path / "ok.png"), np.full((240, 320), 90, np.uint8))
    for i in range(3):
        (tmp_path / f"bad_{i}.png").write_bytes(b"garbage")
    assert main([f"--source={tmp_path}", f"--output={tmp_path / 'c.yaml'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith("executor-calibrate-intrinsics: error: ")
    assert str(tmp_path) in err[-1]
    assert "1 readable image(s), need at least 3" in err[-1]
    assert "bad_0.png" in err[-1]
    assert not (tmp_path / "c.yaml").exists()


@pytest.mark.parametrize("content", [b"hello, not a video", b""])
def test_cli_non_video_file_exits_2_naming_it(tmp_path: Path, content: bytes, capsys) -> None:
    source = tmp_path / "notes.avi"
    source.write_bytes(content)
    assert main([f"--source={source}", f"--output={tmp_path / 'c.yaml'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("executor-calibrate-intrinsics: error: ")
    assert str(source) in err[-1]
    assert "Traceback" not in "\n".join(err)
