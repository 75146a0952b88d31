"""The one atomic writer: all or nothing, plain file modes, leftovers of killed writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from executor_core.atomic_io import atomic_path, remove_leftovers, write_json_atomic


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
