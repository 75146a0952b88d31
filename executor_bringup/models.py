"""The models executor_node runs: the Executor video model and the IDM, from local folders.

Relative paths are taken from the working directory, else from the repository root (the
bringup YAML names the committed ``checkpoints/``). Both paths empty: the tiny random test
doubles of ``executor_core.test_doubles`` (plumbing tests only; the node says so loudly).
The Executor folder may hold any preset: a saved pipeline, or a real-scale LoRA export
(``VideoWorldModel.from_local``: base weights from a local folder), on ``device``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from executor_core.policy import InverseDynamics, VideoModel
from executor_core.robot_description import RobotDescription
from executor_core.test_doubles import TinyRandomInverseDynamics, TinyRandomVideoModel
from inverse_dynamics.processing_idm import InverseDynamicsPolicy
from video_models.world_model import VideoWorldModel

REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_model_dir(path: str) -> str:
    """A relative model path is taken from the working directory, else from the repository
    root, so that the bringup YAML can name the committed checkpoints/ wherever it runs."""
    if Path(path).is_absolute() or Path(path).exists():
        return path
    in_repo = REPO_ROOT / path
    return str(in_repo) if in_repo.exists() else path


def load_models(
    executor_dir: str,
    idm_dir: str,
    robot: RobotDescription,
    seed: int,
    device: str = "cpu",
    base_dir: str = "",
) -> tuple[VideoModel, InverseDynamics, bool]:
    """(video model, IDM, is_test_double). Empty paths give the tiny random test doubles.
    ``device`` ("cpu", "cuda", "auto") is the video model's; ``base_dir``: where a LoRA
    export's base weights are on this machine ("": the path the export names)."""
    if not executor_dir and not idm_dir:
        torch.manual_seed(seed)
        video_model = TinyRandomVideoModel(size_px=32, num_frames=5)
        idm = TinyRandomInverseDynamics(robot.joint_names, robot.home_rad)
        return video_model, idm, True
    if not executor_dir or not idm_dir:
        raise ValueError(
            f"give both model paths or neither: executor_pipeline_dir="
            f"{executor_dir!r}, idm_dir={idm_dir!r}"
        )
    idm = InverseDynamicsPolicy.from_pretrained(Path(resolve_model_dir(idm_dir)))
    if tuple(idm.config.joint_names) != robot.joint_names:
        raise ValueError(
            f"IDM joints {idm.config.joint_names!r} differ from the robot's {robot.joint_names!r}"
        )
    video_model = VideoWorldModel.from_local(
        resolve_model_dir(executor_dir), device=device, base_dir=base_dir or None
    )
    return video_model, idm, False
