"""Every validating config (a ``*Config``, ``*Options``, ``*Spec`` or ``*Settings`` dataclass with
``__post_init__``) of the library refuses NaN
and infinity in each of its float fields, naming the field: a NaN compares false with every
bound, so a check written ``if x < 0`` lets it through, and an infinite speed, tolerance or
size is never what a user meant. Discovered by walking the packages, so a new config is
covered without being listed here."""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
import typing

import numpy as np
import pytest
from test_layout import OUR_PACKAGES

from executor_bringup.bringup_config import NodeSpec
from executor_bringup.frame_recorder import FrameRecorder
from executor_bringup.goal_recording import GoalRecording
from executor_core.chunks import sample_at_rate
from executor_core.types import ActionChunk, JointTrajectory, Observation
from executor_core.video_io import save_video_mp4

PACKAGES = sorted(OUR_PACKAGES)  # every layer's packages (tests/test_layout.py)
# Needs the ROS 2 `launch` package, which has no wheel (a source ROS install has it).
NOT_IMPORTABLE_HERE = frozenset({"executor_bringup.launch_graph"})
# The configs without a valid default: the fields they need, so that none is skipped.
REQUIRED: dict[str, dict[str, object]] = {
    "GraspGateConfig": {"max_close_height_m": 0.05},
    "JointSpec": {
        "name": "shoulder_pan",
        "lower_rad": -1.0,
        "upper_rad": 1.0,
        "max_velocity_rad_s": 2.0,
        "max_acceleration_rad_s2": 4.0,
    },
    "LeRobotArmConfig": {"port": "/dev/ttyACM0"},
    "SplitSpec": {"name": "seen", "num_items": 1, "first_seed": 1_000_000},
    "NodeSpec": {"name": "executor_node", "executable": "executor_node"},
    "BringupConfig": {
        "graph": "sim",
        "nodes": (NodeSpec(name="executor_node", executable="executor_node"),),
    },
    "RosArmConfig": {
        "output_mode": "action",
        "action_name": "safety/follow_joint_trajectory",
        "max_image_age_s": 1.0,
        "max_clock_skew_s": 0.1,
        "settle_timeout_s": 2.0,
        "verifier_name": "",
    },
}


def _validating_configs() -> list[type]:
    found: list[type] = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name in NOT_IMPORTABLE_HERE:
                continue
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and dataclasses.is_dataclass(obj)
                    and obj.__module__ == module.__name__
                    and "__post_init__" in vars(obj)
                    and obj.__name__.endswith(("Config", "Options", "Spec", "Settings"))
                ):
                    found.append(obj)
    return found


def _float_fields(cls: type, instance: object) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and (
            isinstance(getattr(instance, f.name), float)
            or hints.get(f.name) is float
            or set(typing.get_args(hints.get(f.name))) == {float, type(None)}  # float | None
        )
    ]


def _valid(cls: type) -> object:
    return cls(**REQUIRED.get(cls.__name__, {}))


def _cases() -> list[tuple[type, str]]:
    cases = []
    for cls in _validating_configs():
        cases += [(cls, name) for name in _float_fields(cls, _valid(cls))]
    return cases


CASES = _cases()


def test_the_walk_finds_the_configs() -> None:
    names = {f"{cls.__name__}.{field}" for cls, field in CASES}
    assert {"GoalRunnerConfig.timeout_s", "EnvConfig.fps_hz", "TrainConfig.learning_rate"} <= names
    assert {"GraspGateConfig.max_close_height_m", "JointSpec.lower_rad"} <= names
    assert {"JtcSettings.default_goal_tolerance_rad", "RosArmConfig.max_image_age_s"} <= names
    assert len(CASES) > 100


@pytest.mark.parametrize(
    ("cls", "field"), CASES, ids=[f"{c.__module__}.{c.__name__}.{f}" for c, f in CASES]
)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_float_is_refused_naming_the_field(cls: type, field: str, bad: float) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(_valid(cls), **{field: bad})


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_core_types_refuse_a_non_finite_rate_or_stamp(bad: float) -> None:
    with pytest.raises(ValueError, match="control_rate_hz"):
        ActionChunk(np.zeros((2, 1), np.float32), bad, ("a",))
    with pytest.raises(ValueError, match="stamp_s"):
        Observation(np.zeros((4, 4, 3), np.uint8), bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_rates_of_recording_and_resampling_refuse_non_finite(tmp_path, bad: float) -> None:
    with pytest.raises(ValueError, match="fps must be > 0 and finite"):
        FrameRecorder(bad)
    with pytest.raises(ValueError, match="video_fps must be > 0 and finite"):
        GoalRecording(None, bad, None)
    with pytest.raises(ValueError, match="fps must be > 0 and finite"):
        save_video_mp4(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "v.mp4", bad)
    assert not list(tmp_path.iterdir())
    trajectory = JointTrajectory(("a",), np.zeros((1, 1)), np.array([0.5]))
    with pytest.raises(ValueError, match="rate_hz must be > 0 and finite"):
        sample_at_rate(trajectory, np.zeros(1), bad)
