"""Side-by-side frames of executed episodes: one row per video, ``num_frames`` frames each,
evenly spaced from the first to the last, the row titled with the video's name.

    .venv/bin/python benchmarks/frames_sheet.py \\
        --videos a.mp4,b.mp4 --num_frames 6 --output checkpoints/policy_sim/reference/frames.png

Writes the PNG atomically and prints its path and the frame indices shown.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from executor_core.atomic_io import atomic_path
from executor_core.config_cli import OneLineArgumentParser, cli_main
from executor_core.video_io import read_video_mp4


@dataclass(frozen=True)
class FramesSheetConfig:
    videos: str  # comma-separated video files, one row each
    output: Path
    num_frames: int = 6  # frames per row, evenly spaced over the video

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError(f"videos must name at least one file, got {self.videos!r}")
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise ValueError(f"videos: no such file: {', '.join(missing)}")
        if not 2 <= self.num_frames <= 32:
            raise ValueError(f"num_frames must be in [2, 32], got {self.num_frames!r}")
        if self.output.suffix != ".png":
            raise ValueError(f"output must be a .png file, got {str(self.output)!r}")

    @property
    def paths(self) -> list[Path]:
        return [Path(v) for v in self.videos.split(",") if v.strip()]


def frame_indices(length: int, num_frames: int) -> list[int]:
    """``num_frames`` indices evenly spaced over ``length`` frames, first and last included
    (repeats when the video is shorter)."""
    return [int(np.rint(i)) for i in np.linspace(0, length - 1, num_frames)]


def write_sheet(cfg: FramesSheetConfig) -> dict[str, list[int]]:
    videos = {p: read_video_mp4(p) for p in cfg.paths}
    fig, axes = plt.subplots(
        len(videos),
        cfg.num_frames,
        figsize=(1.6 * cfg.num_frames, 1.8 * len(videos)),
        squeeze=False,
    )
    shown: dict[str, list[int]] = {}
    for row, (path, frames) in zip(axes, videos.items(), strict=True):
        shown[path.name] = frame_indices(len(frames), cfg.num_frames)
        for ax, t in zip(row, shown[path.name], strict=True):
            ax.imshow(frames[t])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"t={t}", fontsize=7)
        row[0].set_title(path.stem, fontsize=7, loc="left")
    fig.tight_layout()
    with atomic_path(cfg.output) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return shown


@cli_main("frames_sheet")
def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="frames_sheet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", required=True, help="a.mp4,b.mp4,...: one row each")
    parser.add_argument("--output", type=Path, required=True, help="the .png to write")
    parser.add_argument("--num_frames", type=int, default=6, help="frames per row")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cfg = FramesSheetConfig(args.videos, args.output, args.num_frames)
    shown = write_sheet(cfg)
    print(json.dumps({"output": str(cfg.output), "frames": shown}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
