"""``executor-calibrate-intrinsics``: camera_info YAML from target images or a video.

    executor-calibrate-intrinsics --preset charuco_7x5 --source=calib_images/ \
        --output=config/cameras/scene_camera.yaml --camera_name=scene_camera

A folder uses every image where the target is found; a video goes through automatic
view selection for coverage. For the live ``image_raw`` topic run
``python -m executor_bringup.calibration_capture_node`` (same options). Writes the ROS
camera_info YAML and, beside it, ``<output>.report.json`` (residuals, the resolved config).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from calibration.atomic_io import write_text_atomic
from calibration.camera_info_io import save_camera_info
from calibration.image_sources import iter_images
from calibration.intrinsics import (
    CalibrationError,
    IntrinsicsOptions,
    IntrinsicsResult,
    calibrate_intrinsics,
)
from calibration.sample_selection import CoverageSelector, SelectionOptions
from calibration.targets import Detection, TargetSpec, detect_target
from executor_core.config_cli import ConfigError, config_to_dict, parse_config

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
    # The tiny one tests run: small boards, three views suffice.
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


def collect_detections(cfg: IntrinsicsCliConfig) -> tuple[list[Detection | None], list[str]]:
    """Detect the target in every source image, or select views from a video stream."""
    if cfg.source is None:
        raise ConfigError("--source is required (a folder of images or a video file)")
    select = cfg.select
    if select == "auto":
        select = "all" if Path(cfg.source).is_dir() else "coverage"
    detections: list[Detection | None] = []
    names: list[str] = []
    selector = CoverageSelector(cfg.selection)
    for name, image in iter_images(cfg.source, cfg.every_nth):
        detection = detect_target(image, cfg.target)
        if select == "all":
            detections.append(detection)
            names.append(name)
        elif selector.offer(detection, name) and selector.is_ready:
            break
    if select == "coverage":
        progress = selector.progress()
        logger.info("coverage %s with %d views", progress, len(selector.kept))
        if not selector.is_ready:
            logger.warning("coverage incomplete %s; calibrating with what was seen", progress)
        return list(selector.kept), list(selector.kept_names)
    return detections, names


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
    detections, names = collect_detections(cfg)
    result = calibrate_intrinsics(detections, names, cfg.options, cfg.camera_name)
    save_camera_info(result.camera_info, cfg.output)
    report_path = Path(cfg.output).with_suffix(".report.json")
    write_text_atomic(report_path, json.dumps(result_report(result, cfg), indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = parse_config(IntrinsicsCliConfig, sys.argv[1:] if argv is None else argv, PRESETS)
        result = run(cfg)
    except (ConfigError, CalibrationError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.report())
    print(f"wrote {cfg.output} and {Path(cfg.output).with_suffix('.report.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
