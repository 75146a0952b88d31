"""Videos on disk: mp4 written atomically and read back; the frames sheet of executed
episodes (``benchmarks/frames_sheet.py``), bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from executor_core.video_io import read_video_mp4, save_video_mp4

REPO = Path(__file__).resolve().parents[2]
SHEET = REPO / "benchmarks" / "frames_sheet.py"


def _ramp(num_frames: int, size_px: int = 32) -> np.ndarray:
    """Frames whose brightness grows with t, one colour channel per third of the video."""
    frames = np.zeros((num_frames, size_px, size_px, 3), np.uint8)
    for t in range(num_frames):
        frames[t, ..., min(2, 3 * t // num_frames)] = 40 + 200 * t // num_frames
    return frames


def test_a_saved_video_reads_back_as_rgb_frames(tmp_path: Path) -> None:
    frames = _ramp(9)
    path = save_video_mp4(frames, tmp_path / "v.mp4", fps=10)
    back = read_video_mp4(path)
    assert back.shape == frames.shape
    assert back.dtype == np.uint8
    # lossy codec, but the channel order and brightness survive
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 8
    assert back[0, ..., 0].mean() > back[0, ..., 2].mean() + 20  # red first, not blue


def test_reading_a_missing_or_empty_video_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing\.mp4"):
        read_video_mp4(tmp_path / "nothing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"empty\.mp4"):
        read_video_mp4(tmp_path / "empty.mp4")


def _run_sheet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SHEET), *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_the_sheet_shows_each_video_from_first_to_last_frame(tmp_path: Path) -> None:
    a = save_video_mp4(_ramp(11), tmp_path / "a.mp4", fps=10)
    b = save_video_mp4(_ramp(3), tmp_path / "b.mp4", fps=10)
    out = tmp_path / "sheet.png"
    done = _run_sheet("--videos", f"{a},{b}", "--num_frames", "4", "--output", str(out))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)["frames"]
    assert shown == {"a.mp4": [0, 3, 7, 10], "b.mp4": [0, 1, 1, 2]}
    image = cv2.imread(str(out))
    assert image is not None
    assert image.shape[0] > 100  # two rows of frames


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--videos", "", "--output", "{o}"], "videos"),
        (["--videos", "nowhere.mp4", "--output", "{o}"], "nowhere.mp4"),
        (["--videos", "{a}", "--num_frames", "1", "--output", "{o}"], "num_frames"),
        (["--videos", "{a}", "--output", "{o}.jpg"], "output"),
        (["--videos", "{a}"], "--output"),
    ],
)
def test_bad_input_exits_2_and_names_the_value(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    a = save_video_mp4(_ramp(4), tmp_path / "a.mp4", fps=10)
    done = _run_sheet(*[x.format(a=a, o=tmp_path / "sheet.png") for x in args])
    assert done.returncode == 2
    assert needle in done.stderr
    assert not (tmp_path / "sheet.png").exists()
