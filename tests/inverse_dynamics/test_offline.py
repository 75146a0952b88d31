"""Every IDM entry point works offline: a missing local dataset is a clear error (or, in the
benchmark, a skipped part) before lerobot is called; nothing tries the network."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from executor_core.config_cli import require_local_dataset
from inverse_dynamics.collect_corrections import CollectCorrectionsConfig, collect
from inverse_dynamics.collect_corrections import main as corrections_main
from inverse_dynamics.dataset_idm import load_episodes
from inverse_dynamics.evaluate_idm import EvalIDMConfig, evaluate
from inverse_dynamics.evaluate_idm import main as evaluate_main
from inverse_dynamics.train_idm import TrainIDMConfig, train
from inverse_dynamics.train_idm import main as train_main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt (the Hugging Face Hub included) fails the test, as does any
    lerobot dataset loader: a missing local root must be refused before lerobot runs."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # offline must not depend on it
    import lerobot.datasets.lerobot_dataset as lerobot_dataset

    def loader_called(*args: object, **kwargs: object) -> None:
        raise AssertionError("a lerobot dataset loader was called for a missing root")

    monkeypatch.setattr(lerobot_dataset.LeRobotDatasetMetadata, "__init__", loader_called)
    monkeypatch.setattr(lerobot_dataset.LeRobotDataset, "__init__", loader_called)


@pytest.fixture
def checkpoint_of_missing_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """The committed IDM checkpoint, its training config naming a dataset that is absent
    (a fresh clone: data/ is not committed)."""
    ckpt = tmp_path / "idm"
    shutil.copytree(REPO / "checkpoints" / "idm_sim", ckpt)
    missing = tmp_path / "data" / "sim_v1"
    cfg = json.loads((ckpt / "train_config.json").read_text())
    cfg["dataset_root"] = str(missing)
    (ckpt / "train_config.json").write_text(json.dumps(cfg))
    return ckpt, missing


def test_require_local_dataset_names_the_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'absent'} \\(no such folder\\)"):
        require_local_dataset(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"missing meta/info\.json"):
        require_local_dataset(tmp_path / "empty")
    (tmp_path / "ok" / "meta").mkdir(parents=True)
    (tmp_path / "ok" / "meta" / "info.json").write_text("{}")
    assert require_local_dataset(str(tmp_path / "ok")) == tmp_path / "ok"


def test_missing_dataset_is_refused_before_lerobot(
    no_network: None, checkpoint_of_missing_dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    ckpt, missing = checkpoint_of_missing_dataset
    match = f"no local LeRobotDataset at {missing}"
    with pytest.raises(FileNotFoundError, match=match):
        evaluate(EvalIDMConfig(checkpoint=ckpt))
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match=match):
        train(TrainIDMConfig(dataset_root=missing, output_dir=out))
    assert not out.exists()  # nothing written before the check
    with pytest.raises(FileNotFoundError, match=match):
        collect(CollectCorrectionsConfig(checkpoint=ckpt, dataset_root=missing))
    with pytest.raises(FileNotFoundError, match=match):
        load_episodes(missing, TrainIDMConfig().model)


def test_cli_missing_dataset_exits_2_with_one_line(
    no_network: None,
    checkpoint_of_missing_dataset: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt, missing = checkpoint_of_missing_dataset
    for main, prog, argv in (
        (evaluate_main, "executor-idm-evaluate", [f"--checkpoint={ckpt}"]),
        (train_main, "executor-idm-train", [f"--dataset_root={missing}"]),
        (
            corrections_main,
            "executor-idm-corrections",
            [f"--checkpoint={ckpt}", f"--dataset_root={missing}"],
        ),
    ):
        assert main(argv) == 2, prog
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"{prog}: error: no local LeRobotDataset at {missing} (no such folder)"]


def test_bench_idm_skips_the_evaluation_offline(
    no_network: None,
    checkpoint_of_missing_dataset: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    load_script: Callable[[str], ModuleType],
) -> None:
    ckpt, missing = checkpoint_of_missing_dataset
    bench = load_script("benchmarks/bench_idm.py")
    argv = [f"--checkpoint={ckpt}", "--latency_iters=10", "--train_steps=2", "--batch_size=2"]
    assert bench.main(argv) is None
    out = capsys.readouterr().out
    assert "latency per chunk" in out
    assert f"evaluation skipped: no local LeRobotDataset at {missing}" in out
