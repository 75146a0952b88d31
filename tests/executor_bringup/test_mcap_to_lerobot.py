"""executor-mcap-to-lerobot on a synthetic recording whose every value is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from executor_interfaces.action import ExecuteTask
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from executor_bringup.image_conversion import fill_image_msg
from executor_bringup.mcap_recorder import McapRecorder
from executor_bringup.mcap_to_lerobot import (
    McapToLeRobotConfig,
    convert,
    main,
    read_recording,
    recording_files,
    resample,
)
from executor_sim.generate import JOINT_NAMES

T0_NS = 1_000_000_000_000
PROMPT = "put the red cube in the bowl"


def _ns(t_s: float) -> int:
    return T0_NS + round(t_s * 1e9)


def _state(t_s: float) -> np.ndarray:
    return 0.1 * np.arange(6) + 0.5 * t_s


def _command(points: list[tuple[float, float]]) -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(JOINT_NAMES))
    for t_s, q in points:
        sec = int(t_s)
        msg.points.append(
            JointTrajectoryPoint(
                positions=[q] * 6,
                time_from_start=Duration(sec=sec, nanosec=round((t_s - sec) * 1e9)),
            )
        )
    return msg


def write_recording(path: Path, with_goal: bool = True, ns: str = "") -> Path:
    """Camera 20 Hz (frame k uniformly 5 k), joints 50 Hz (q_j = 0.1 j + 0.5 t, listed in
    reverse order; between them another device's joint state), a command at 0.5 s (1.0 at
    +0.2 s, 2.0 at +0.4 s), a hold at 1.5 s."""
    recorder = McapRecorder()
    recorder.open(path)
    if with_goal:
        goal = ExecuteTask.Goal(task_prompt=PROMPT)
        recorder.write(f"{ns}/execute_task/goal", ExecuteTask.Goal, goal, _ns(0.0))
    for k in range(40):
        image = fill_image_msg(Image(), np.full((48, 64, 3), 5 * k, np.uint8), "rgb8")
        image.header.stamp = Time(sec=999)  # header stamps are not what the converter uses
        recorder.write(f"{ns}/image_raw", Image, image, _ns(0.05 * k))
    for k in range(100):
        names = list(reversed(JOINT_NAMES))
        js = JointState(name=names, position=list(_state(0.02 * k)[::-1]))
        recorder.write(f"{ns}/joint_states", JointState, js, _ns(0.02 * k))
        other = JointState(name=["conveyor"], position=[9.0])  # another arm's: skipped
        recorder.write(f"{ns}/joint_states", JointState, other, _ns(0.02 * k + 0.01))
    command = _command([(0.2, 1.0), (0.4, 2.0)])
    recorder.write(f"{ns}/commanded_trajectory", JointTrajectory, command, _ns(0.5))
    hold = JointTrajectory(joint_names=list(JOINT_NAMES))
    recorder.write(f"{ns}/commanded_trajectory", JointTrajectory, hold, _ns(1.5))
    recorder.close({})
    recorder.shutdown()
    return path


def test_resampling_takes_frames_states_and_one_tick_ahead_targets(tmp_path: Path) -> None:
    rec = read_recording(write_recording(tmp_path / "a.mcap"), "", 64)
    assert rec.prompt == PROMPT
    episode = resample(rec, fps=10)
    ticks_s = 0.1 * np.arange(20)  # both streams cover 0 .. 1.95 s
    assert episode.images.shape == (20, 64, 64, 3)
    assert list(episode.images[:, 0, 0, 0]) == [10 * k for k in range(20)]  # frame 2k
    np.testing.assert_allclose(episode.states_rad, [_state(t) for t in ticks_s], atol=1e-6)
    expected = []
    for t in ticks_s + 0.1:  # the target for the next tick
        if t < 0.5 - 1e-9:  # before any command: where the arm is next
            expected.append(_state(t))
        elif t <= 0.7 + 1e-9:  # from the measured state at 0.5 s to 1.0 at 0.7 s
            expected.append(_state(0.5) + (1.0 - _state(0.5)) * (t - 0.5) / 0.2)
        elif t < 1.5 - 1e-9:  # to 2.0 at 0.9 s, then held there
            expected.append(np.full(6, min(2.0, 1.0 + (t - 0.7) / 0.2)))
        else:  # the empty trajectory: hold where the arm was at 1.5 s
            expected.append(_state(1.5))
    np.testing.assert_allclose(episode.actions_rad, expected, atol=1e-5)


def test_converted_dataset_loads_offline_with_the_expert_features(tmp_path: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    files = [write_recording(tmp_path / f"{i}.mcap", ns="/arm1") for i in range(2)]
    root = tmp_path / "dataset"
    cfg = McapToLeRobotConfig(
        recordings=(tmp_path,), root=root, repo_id="test/recorded", namespace="/arm1"
    )
    summary = convert(cfg)
    assert summary == {"root": str(root), "episodes": 2, "frames": 40}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.mcap", "1.mcap", "dataset"]
    dataset = LeRobotDataset("test/recorded", root=root)
    assert dataset.num_episodes == 2
    assert len(dataset) == 40
    assert set(dataset.meta.features) >= {"observation.images.scene", "observation.state"}
    item = dataset[25]  # episode 1, tick 5
    assert item["task"] == PROMPT
    assert int(item["episode_index"]) == 1
    np.testing.assert_allclose(item["observation.state"].numpy(), _state(0.5), atol=1e-6)
    image = item["observation.images.scene"].numpy()
    assert image.shape == (3, 64, 64)
    assert abs(float(image.mean()) * 255 - 50) < 4  # frame 10 (lossy video)
    sources = (root / "meta" / "executor_recordings.jsonl").read_text()
    assert all(str(f) in sources for f in files)
    with pytest.raises(ValueError, match="exists; pass --overwrite=true"):
        convert(cfg)


def test_an_unusable_recording_among_several_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_recording(tmp_path / "a.mcap")
    (tmp_path / "b.mcap").write_bytes(b"not an mcap file")
    summary = convert(McapToLeRobotConfig(recordings=(tmp_path,), root=tmp_path / "out"))
    assert summary["episodes"] == 1
    assert any("skipped" in r.message and "b.mcap" in r.message for r in caplog.records)
    (tmp_path / "a.mcap").write_bytes(b"not one either")
    with pytest.raises(ValueError, match="none of the 2 recordings"):
        convert(McapToLeRobotConfig(recordings=(tmp_path,), root=tmp_path / "out2"))


def test_bad_input_names_the_file_or_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FileNotFoundError, match=r"no recording at /nonexistent\.mcap"):
        recording_files((Path("/nonexistent.mcap"),))
    with pytest.raises(ValueError, match=r"no \.mcap recordings in the folder"):
        recording_files((tmp_path,))
    teleop = write_recording(tmp_path / "teleop.mcap", with_goal=False)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"teleop\.mcap has no goal prompt; pass --task"):
        convert(McapToLeRobotConfig(recordings=(teleop,), root=out))
    (tmp_path / "junk.mcap").write_bytes(b"not an mcap file")
    assert main([f"--recordings={tmp_path / 'junk.mcap'}", f"--root={out}"]) == 2
    assert "junk.mcap is not a readable MCAP file" in capsys.readouterr().err
    assert main(["--fps=0", f"--recordings={teleop}"]) == 2
    assert "fps must be in [1, 100], got 0" in capsys.readouterr().err
    assert not out.exists()
