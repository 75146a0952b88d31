"""``executor-mcap-to-lerobot``: goal recordings (MCAP) -> a LeRobotDataset v3.

    executor-mcap-to-lerobot --recordings=/tmp/executor_recordings --root data/recorded_v1
    executor-mcap-to-lerobot --recordings='["a.mcap", "b.mcap"]' --root data/recorded_v1
    executor-mcap-to-lerobot --preset debug

Each recording (executor_node's, ``executor_bringup.recording_layout``, or any ROS 2 MCAP
with the same topics, a teleoperation session for one) becomes one episode with the
features of the expert data (``executor_sim.generate.dataset_features``), so that the IDM
can be fine-tuned on real frames (``executor-idm-train --dataset_root``):

- ``observation.images.scene``: ``image_raw`` at ``fps``, the latest frame at each tick,
  centre-cropped and resized to ``resolution`` (``executor_core.frames``);
- ``observation.state``: ``joint_states`` interpolated linearly at each tick (radians, the
  robot's joint order);
- ``action``: the absolute joint target one tick ahead, as the expert data has it: the
  commanded trajectory (``commanded_trajectory``, interpolated from the measured state when
  it was sent through its points; an empty trajectory holds) at tick + 1/fps; without any
  command (a teleoperation recording), the measured state at tick + 1/fps;
- ``task``: the goal's prompt (``execute_task/goal``), else ``--task``.

Times are log (receive) times, one clock for every topic. Ticks run from when both a
frame and a joint state are there to the last of either. Joint states without all of the
robot's joints (another device's) are ignored. Among several recordings, one that cannot
be used (unreadable, no frames, no prompt) is skipped with a warning naming it. Decoding
uses ``mcap_ros2`` (no rclpy needed). The dataset is built in a hidden temporary beside
``root`` and renamed into place; ``meta/executor_recordings.jsonl`` names each episode's
source file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from executor_bringup.image_conversion import image_to_rgb8
from executor_bringup.recording_layout import (
    COMMAND_TOPIC,
    GOAL_METADATA,
    GOAL_TOPIC,
    IMAGE_TOPIC,
    JOINT_STATES_TOPIC,
    in_namespace,
)
from executor_core.atomic_io import atomic_path, remove_leftovers
from executor_core.config_cli import cli_main, configure_cli_logging, parse_config, save_config_json
from executor_core.frames import center_crop_resize
from executor_core.video_io import keep_thread_scheduling
from executor_sim.generate import IMAGE_KEY, JOINT_NAMES, dataset_features

logger = logging.getLogger(__name__)

RESOLUTIONS = (32, 64, 96, 128, 256)


@dataclass(frozen=True)
class McapToLeRobotConfig:
    # .mcap files, or folders of them (default: executor_node's default record_dir)
    recordings: tuple[Path, ...] = (Path("/tmp/executor_recordings"),)
    root: Path = Path("data/recorded")
    repo_id: str = "executor/recorded"
    fps: int = 10  # the expert data's rate
    resolution: int = 64  # square frames, px (the expert data's)
    namespace: str = ""  # the recorded graph's namespace (its topics' prefix)
    task: str = ""  # for a recording without a goal (teleoperation)
    overwrite: bool = False  # replace a dataset at root

    def __post_init__(self) -> None:
        if not self.recordings:
            raise ValueError("recordings must name at least one .mcap file or folder, got ()")
        if not 1 <= self.fps <= 100:
            raise ValueError(f"fps must be in [1, 100], got {self.fps!r}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution!r}")
        if not self.repo_id or "/" not in self.repo_id:
            raise ValueError(f"repo_id must look like 'owner/name', got {self.repo_id!r}")


PRESETS = {
    "debug": McapToLeRobotConfig(
        root=Path("outputs/recorded_debug"),
        repo_id="executor/recorded_debug",
        overwrite=True,
    ),
}


@dataclass
class Recording:
    """What one file holds for the dataset; times in ns (log time)."""

    path: Path
    image_t_ns: list[int] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)  # (S, S, 3) uint8, resized
    joint_t_ns: list[int] = field(default_factory=list)
    joint_q: list[np.ndarray] = field(default_factory=list)  # (J,) robot order
    # (sent at, (P,) time_from_start s, (P, J) positions); P = 0: hold
    commands: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    prompt: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def recording_files(paths: tuple[Path, ...]) -> list[Path]:
    """The .mcap files named, folders expanded (sorted); a missing path is an error."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.mcap"))
            if not found:
                raise ValueError(f"no .mcap recordings in the folder {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no recording at {path}")
    return files


def _in_robot_order(names: list[str], values: list[float]) -> np.ndarray | None:
    """The values in the robot's joint order; None when a joint is missing."""
    if not set(JOINT_NAMES) <= set(names) or len(values) != len(names):
        return None
    return np.array([values[names.index(n)] for n in JOINT_NAMES], dtype=np.float64)


def read_recording(path: Path, namespace: str, resolution: int) -> Recording:
    """Decode the topics the dataset needs from one MCAP file."""
    topics = {t: in_namespace(namespace, t) for t in (IMAGE_TOPIC, JOINT_STATES_TOPIC)}
    topics |= {t: in_namespace(namespace, t) for t in (COMMAND_TOPIC, GOAL_TOPIC)}
    rec = Recording(path)
    try:
        with path.open("rb") as stream:
            reader = make_reader(stream, decoder_factories=[DecoderFactory()])
            for meta in reader.iter_metadata():
                if meta.name == GOAL_METADATA:
                    rec.metadata = dict(meta.metadata)
            for _, channel, message, msg in reader.iter_decoded_messages(
                topics=list(topics.values()), log_time_order=True
            ):
                try:
                    _take(rec, channel.topic, topics, message.log_time, msg, resolution)
                except ValueError as exc:
                    raise ValueError(f"{path}: a message on {channel.topic}: {exc}") from None
    except McapError as exc:
        raise ValueError(f"{path} is not a readable MCAP file: {exc}") from None
    rec.prompt = rec.prompt or rec.metadata.get("task_prompt", "")
    return rec


def _take(
    rec: Recording, topic: str, topics: dict[str, str], t_ns: int, msg: Any, resolution: int
) -> None:
    if topic == topics[IMAGE_TOPIC]:
        rec.image_t_ns.append(t_ns)
        rec.images.append(center_crop_resize(np.ascontiguousarray(image_to_rgb8(msg)), resolution))
    elif topic == topics[JOINT_STATES_TOPIC]:
        q = _in_robot_order(list(msg.name), list(msg.position))
        if q is not None:  # another arm's or a partial joint state: not ours
            rec.joint_t_ns.append(t_ns)
            rec.joint_q.append(q)
    elif topic == topics[COMMAND_TOPIC]:
        times = [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in msg.points]
        names = list(msg.joint_names)
        q = [_in_robot_order(names, list(p.positions)) for p in msg.points]
        if any(p is None for p in q):
            raise ValueError(f"a point lacks some of the joints {list(JOINT_NAMES)}")
        positions = np.array(q).reshape(len(q), len(JOINT_NAMES))
        rec.commands.append((t_ns, np.array(times, dtype=np.float64), positions))
    elif topic == topics[GOAL_TOPIC]:
        rec.prompt = msg.task_prompt


@dataclass
class Episode:
    images: np.ndarray  # (T, S, S, 3) uint8
    states_rad: np.ndarray  # (T, J)
    actions_rad: np.ndarray  # (T, J)


class _Joints:
    """The measured joint positions as a function of time (linear, held beyond the ends)."""

    def __init__(self, rec: Recording) -> None:
        self.t_ns = np.array(rec.joint_t_ns, dtype=np.float64)
        self.q = np.stack(rec.joint_q)

    def at(self, t_ns: np.ndarray) -> np.ndarray:
        """(len(t_ns), J)"""
        columns = [np.interp(t_ns, self.t_ns, self.q[:, j]) for j in range(self.q.shape[1])]
        return np.stack(columns, axis=-1)


def _commanded(rec: Recording, joints: _Joints, t_ns: np.ndarray) -> np.ndarray:
    """The target the latest command sets at each of ``t_ns`` (NaN before the first): from
    the state measured when it was sent through its points, then its last point held; an
    empty trajectory holds the state measured when it was sent."""
    out = np.full((len(t_ns), len(JOINT_NAMES)), np.nan)
    starts = np.array([c[0] for c in rec.commands], dtype=np.float64)
    which = np.searchsorted(starts, t_ns, side="right") - 1
    start_q = joints.at(starts) if len(starts) else np.empty((0, len(JOINT_NAMES)))
    for i, (start_ns, times_s, positions) in enumerate(rec.commands):
        rows = np.flatnonzero(which == i)
        if not len(rows):
            continue
        knots_s = np.concatenate([[0.0], times_s])
        knots_q = np.concatenate([start_q[i][None], positions])
        elapsed_s = (t_ns[rows] - start_ns) * 1e-9
        for j in range(len(JOINT_NAMES)):
            out[rows, j] = np.interp(elapsed_s, knots_s, knots_q[:, j])
    return out


def resample(rec: Recording, fps: int) -> Episode:
    """Frames, states and actions at ``fps`` over the span both camera and arm cover."""
    if not rec.images or not rec.joint_q:
        raise ValueError(
            f"{rec.path} has {len(rec.images)} image(s) and {len(rec.joint_q)} joint "
            f"state(s) with the joints {list(JOINT_NAMES)}; a dataset episode needs both"
        )
    period_ns = 1e9 / fps
    start_ns = max(rec.image_t_ns[0], rec.joint_t_ns[0])
    end_ns = min(rec.image_t_ns[-1], rec.joint_t_ns[-1])
    ticks = start_ns + period_ns * np.arange(int((end_ns - start_ns) // period_ns) + 1)
    if len(ticks) < 2:
        raise ValueError(f"{rec.path} spans less than two frames at {fps} fps")
    frame_index = np.searchsorted(np.array(rec.image_t_ns), ticks, side="right") - 1
    images = np.stack([rec.images[i] for i in frame_index])
    joints = _Joints(rec)
    actions = _commanded(rec, joints, ticks + period_ns)
    uncommanded = np.isnan(actions[:, 0])  # before the first command, or none at all
    actions[uncommanded] = joints.at(ticks[uncommanded] + period_ns)
    return Episode(images, joints.at(ticks).astype(np.float32), actions.astype(np.float32))


def convert(cfg: McapToLeRobotConfig) -> dict[str, Any]:
    """Write every recording as one episode of a LeRobotDataset at ``cfg.root``."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    files = recording_files(cfg.recordings)
    if cfg.root.exists() and not cfg.overwrite:
        raise ValueError(f"{cfg.root} exists; pass --overwrite=true to replace it")
    episodes = []
    for path in files:
        try:
            episodes.append(_episode(path, cfg))
        except ValueError as exc:  # one unusable file among many is skipped, named
            if len(files) == 1:
                raise
            logger.warning("skipped %s: %s", path, exc)
    if not episodes:
        raise ValueError(f"none of the {len(files)} recordings in {cfg.recordings} is usable")
    for leftover in remove_leftovers(cfg.root.parent, cfg.root.name):
        logger.info("removed %s, left by an interrupted write", leftover)
    records = []
    with atomic_path(cfg.root, directory=True) as build:
        build.rmdir()  # LeRobot creates the folder itself
        dataset = LeRobotDataset.create(
            repo_id=cfg.repo_id,
            fps=cfg.fps,
            features=dataset_features(cfg.resolution),
            root=build,
            robot_type="so101",
            use_videos=True,
        )
        for rec, prompt, episode in episodes:
            for t in range(len(episode.images)):
                dataset.add_frame(
                    {
                        IMAGE_KEY: episode.images[t],
                        "observation.state": episode.states_rad[t],
                        "action": episode.actions_rad[t],
                        "task": prompt,
                    }
                )
            with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
                dataset.save_episode()
            records.append(_record(len(records), rec, prompt, len(episode.images)))
        with keep_thread_scheduling():  # SVT-AV1 would leave it real-time
            dataset.finalize()
        shutil.rmtree(build / "images", ignore_errors=True)  # empty once encoded
        lines = "".join(json.dumps(r) + "\n" for r in records)
        (build / "meta" / "executor_recordings.jsonl").write_text(lines)
        save_config_json(cfg, build / "meta" / "executor_mcap_to_lerobot_config.json")
    return {
        "root": str(cfg.root),
        "episodes": len(records),
        "frames": sum(r["frames"] for r in records),
    }


def _episode(path: Path, cfg: McapToLeRobotConfig) -> tuple[Recording, str, Episode]:
    rec = read_recording(path, cfg.namespace, cfg.resolution)
    prompt = rec.prompt or cfg.task
    if not prompt.strip():
        raise ValueError(f"{path} has no goal prompt; pass --task for it")
    return rec, prompt, resample(rec, cfg.fps)


def _record(index: int, rec: Recording, prompt: str, frames: int) -> dict[str, Any]:
    return {
        "episode_index": index,
        "source": str(rec.path),
        "prompt": prompt,
        "frames": frames,
        "commanded": bool(rec.commands),
        "goal_id": rec.metadata.get("goal_id", ""),
        "status": rec.metadata.get("status", ""),
    }


@cli_main("executor-mcap-to-lerobot")
def main(argv: list[str] | None = None) -> None:
    configure_cli_logging()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cfg = parse_config(McapToLeRobotConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    summary = convert(cfg)
    print(
        f"wrote {summary['episodes']} episode(s), {summary['frames']} frames at {cfg.fps} fps "
        f"to {summary['root']}"
    )


if __name__ == "__main__":
    sys.exit(main())
