"""``executor-calibrate-intrinsics``: camera_info YAML from target images or a video.

    executor-calibrate-intrinsics --preset charuco_7x5 --source=calib_images/ \
        --output=config/cameras/scene_camera.yaml --camera_name=scene_camera

A folder uses every image where the target is found; a video goes through automatic
view selection for coverage. For the live ``image_raw`` topic run
``python -m executor_bringup.calibration_capture_node`` (same options). Writes the ROS
camera_info YAML and, beside it, ``<output>.report.json`` (residuals, the resolved config).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from calibration.camera_info_io import save_camera_info
from calibration.image_sources import ImageSource
from calibration.intrinsics import (
    IntrinsicsOptions,
    IntrinsicsResult,
    calibrate_intrinsics,
)
from calibration.sample_selection import CoverageSelector, SelectionOptions
from calibration.targets import Detection, TargetSpec, detect_target
from executor_core.atomic_io import write_json_atomic
from executor_core.config_cli import (
    ConfigError,
    cli_main,
    config_to_dict,
    configure_cli_logging,
    parse_config,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntrinsicsCliConfig:
    source: Path | None = None  # folder of images or a video file
    output: Path = Path("camera_info.yaml")
    camera_name: str = "camera"
    target: TargetSpec = field(default_factory=TargetSpec)
    options: IntrinsicsOptions = field(default_factory=IntrinsicsOptions)
    selection: SelectionOptions = field(default_factory=SelectionOptions)
    select: Literal["auto", "all", "coverage"] = "auto"  # auto: all (folder), coverage (video)
    every_nth: int = 1

    def __post_init__(self) -> None:
        if self.select not in ("auto", "all", "coverage"):
            raise ValueError(f"select must be auto, all or coverage, got {self.select!r}")
        if self.every_nth < 1:
            raise ValueError(f"every_nth must be >= 1, got {self.every_nth!r}")
        if not self.camera_name:
            raise ValueError(f"camera_name must not be empty, got {self.camera_name!r}")


PRESETS: dict[str, IntrinsicsCliConfig] = {
    # Tiny: a small ChArUco board, k3 fixed, 3..8 views (tests run it).
    "debug": IntrinsicsCliConfig(
        target=TargetSpec(
            kind="charuco", squares_x=5, squares_y=4, square_size_m=0.04, marker_size_m=0.024
        ),
        options=IntrinsicsOptions(radial_coefficients=2),
        selection=SelectionOptions(min_samples=3, max_samples=8),
    ),
    # ROS's tutorial board: 8x6 inner corners, 108 mm squares.
    "checkerboard_8x6": IntrinsicsCliConfig(
        target=TargetSpec(kind="checkerboard", squares_x=9, squares_y=7, square_size_m=0.108)
    ),
    "charuco_7x5": IntrinsicsCliConfig(
        target=TargetSpec(
            kind="charuco", squares_x=7, squares_y=5, square_size_m=0.03, marker_size_m=0.022
        )
    ),
}


class StreamCalibrator:
    """Frames in stream order (video or live topic) -> views chosen for coverage -> files.

    Pure (no ROS): the capture node feeds it decoded frames; the video path does too.
    """

    def __init__(self, cfg: IntrinsicsCliConfig) -> None:
        self.cfg = cfg
        self.selector = CoverageSelector(cfg.selection)
        self.frames_seen = 0
        self.frames_with_target = 0

    def offer(self, image: np.ndarray, name: str) -> bool:
        """Detect the target in one (H, W) or (H, W, 3) BGR uint8 frame; True once the
        kept views cover the image well enough (or the sample budget is spent)."""
        self.frames_seen += 1
        detection = detect_target(image, self.cfg.target)
        self.frames_with_target += detection is not None
        if self.selector.offer(detection, name):
            logger.info(
                "kept %s (%d views), coverage %s",
                name,
                len(self.selector.kept),
                {k: round(v, 2) for k, v in self.selector.progress().items()},
            )
        return self.selector.is_ready

    def finish(self) -> IntrinsicsResult:
        """Calibrate on the kept views and write the camera_info and the report."""
        if not self.selector.is_ready:
            logger.warning(
                "coverage incomplete %s after %d frames (%d with the target); calibrating "
                "with the %d views kept",
                self.selector.progress(),
                self.frames_seen,
                self.frames_with_target,
                len(self.selector.kept),
            )
        return calibrate_and_write(
            list(self.selector.kept), list(self.selector.kept_names), self.cfg
        )


def calibrate_and_write(
    detections: list[Detection | None], names: list[str], cfg: IntrinsicsCliConfig
) -> IntrinsicsResult:
    result = calibrate_intrinsics(detections, names, cfg.options, cfg.camera_name)
    save_camera_info(result.camera_info, cfg.output)
    report_path = Path(cfg.output).with_suffix(".report.json")
    write_json_atomic(report_path, result_report(result, cfg))
    return result


def result_report(result: IntrinsicsResult, cfg: IntrinsicsCliConfig) -> dict:
    return {
        "camera_name": result.camera_info.camera_name,
        "rms_px": result.rms_px,
        "std_fx_fy_cx_cy_px": result.std_fx_fy_cx_cy_px.tolist(),
        "per_image": [
            {"name": n, "rms_px": float(r), "max_px": float(m)}
            for n, r, m in zip(
                result.image_names, result.per_image_rms_px, result.per_image_max_px, strict=True
            )
        ],
        "rejected": [{"name": n, "reason": r} for n, r in result.rejected],
        "config": config_to_dict(cfg),
    }


def run(cfg: IntrinsicsCliConfig) -> IntrinsicsResult:
    if cfg.source is None:
        raise ConfigError("--source is required (a folder of images or a video file)")
    select = cfg.select
    if select == "auto":
        select = "all" if Path(cfg.source).is_dir() else "coverage"
    # Unreadable files are skipped with a warning; too few readable ones name the source.
    images = ImageSource(cfg.source, cfg.every_nth)
    if select == "coverage":
        stream = StreamCalibrator(cfg)
        for name, image in images:
            if stream.offer(image, name):
                break
        images.require(cfg.options.min_images)
        return stream.finish()
    names, detections = [], []
    for name, image in images:
        names.append(name)
        detections.append(detect_target(image, cfg.target))
    images.require(cfg.options.min_images)
    return calibrate_and_write(detections, names, cfg)


@cli_main("executor-calibrate-intrinsics")
def main(argv: list[str] | None = None) -> int:
    configure_cli_logging()
    cfg = parse_config(IntrinsicsCliConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    result = run(cfg)
    print(result.report())
    print(f"wrote {cfg.output} and {Path(cfg.output).with_suffix('.report.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
