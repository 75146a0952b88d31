"""The one atomic writer: all or nothing, plain file modes, leftovers of killed writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from executor_core.atomic_io import atomic_path, claim_cache, remove_leftovers, write_json_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json_atomic(target, {"a": 1})

    def killed_midway() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        killed_midway()
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_folder_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "dataset"
    for content in ("old", "new"):
        with atomic_path(target, directory=True) as tmp:
            (tmp / "part").write_text(content)
    assert (target / "part").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def test_files_get_the_mode_a_plain_open_would_give(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "x.json", [])
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_leftovers_of_killed_writes_are_found_by_name(tmp_path: Path) -> None:
    for name in (".data.abc.tmp", ".data.x1.old", ".data.build.123", ".other.q.tmp", "data"):
        (tmp_path / name).mkdir()
    removed = remove_leftovers(tmp_path, "data")
    assert sorted(p.name for p in removed) == [".data.abc.tmp", ".data.build.123", ".data.x1.old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.q.tmp", "data"]


def test_claim_cache_stamps_once_and_names_every_differing_setting(tmp_path: Path) -> None:
    stamp = claim_cache(tmp_path, {"fps": 10, "root": "a"})
    assert json.loads(stamp.read_text()) == {"fps": 10, "root": "a"}
    assert claim_cache(tmp_path, {"root": "a", "fps": 10}) == stamp  # same settings: resume
    with pytest.raises(ValueError, match="another config") as err:
        claim_cache(tmp_path, {"fps": 30, "jitter": 0.1, "root": "a"})
    message = str(err.value)
    assert "fps: cached 10, this run 30" in message
    assert "jitter: cached '<absent>', this run 0.1" in message
    assert "root" not in message.split("(", 1)[1]
    assert json.loads(stamp.read_text()) == {"fps": 10, "root": "a"}  # the stamp is kept
