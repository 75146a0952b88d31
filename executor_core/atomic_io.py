"""Atomic writes: readers see the old content or the new, never half of it.

The one helper of the repository for writing files and folders: everything that writes a
result, a checkpoint or a dataset goes through :func:`atomic_path` (or one of the small
wrappers below), so a killed process leaves no half-written file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(path: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The caller writes the file (or, with ``directory=True``, fills the folder) at the
    yielded path. On an exception the temporary is removed and ``path`` is untouched. A
    folder that already exists at ``path`` is replaced whole: it is moved aside, the new
    one renamed in, then the old one deleted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    if directory:
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix, suffix=".tmp"))
    else:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp" + path.suffix)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        _default_mode(tmp, directory)
        if directory and path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix, suffix=".old"))
            old.rmdir()
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def remove_leftovers(parent: str | Path, name_pattern: str = "*") -> list[Path]:
    """Delete the temporaries that killed writes of ``parent/<name_pattern>`` left behind.

    Call it only where one process writes into ``parent`` (a trainer's main process): a
    temporary of a write still in flight elsewhere would be deleted too. Returns what it
    removed.
    """
    # .*.tmp: a write killed before its rename; .*.old: a replaced folder whose deletion
    # was killed (atomic_path moves it aside first); .build.*: the older writers' name
    parent = Path(parent)
    suffixes = (".*.tmp*", ".*.old", ".build.*")
    leftovers = sorted({p for s in suffixes for p in parent.glob(f".{name_pattern}{s}")})
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return leftovers


def _default_mode(tmp: Path, directory: bool) -> None:
    """mkstemp/mkdtemp create 0600/0700; give the result the mode a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    if tmp.exists():
        tmp.chmod((0o777 if directory else 0o666) & ~umask)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json_atomic(path: str | Path, payload: Any, indent: int | None = 2) -> Path:
    """JSON with a trailing newline, written atomically."""
    return write_text_atomic(path, json.dumps(payload, indent=indent) + "\n")


def write_npz_atomic(path: str | Path, arrays: dict[str, Any], compressed: bool = False) -> Path:
    """numpy arrays as one ``.npz`` at exactly ``path`` (no suffix added), written atomically."""
    save = np.savez_compressed if compressed else np.savez
    with atomic_path(path) as tmp, tmp.open("wb") as f:  # a file object: numpy adds no suffix
        save(f, **arrays)
    return Path(path)


def setting_differences(
    before: dict[str, Any],
    after: dict[str, Any],
    before_label: str,
    after_label: str,
    keys: Iterable[str] | None = None,
) -> list[str]:
    """``"key: <before_label> X, <after_label> Y"`` for each of ``keys`` (all keys of
    either: None) whose values differ, ``<absent>`` where one side lacks it; sorted."""
    absent = "<absent>"
    keys = sorted(set(before) | set(after), key=str) if keys is None else list(keys)
    return [
        f"{k}: {before_label} {before.get(k, absent)!r}, {after_label} {after.get(k, absent)!r}"
        for k in keys
        if before.get(k, absent) != after.get(k, absent)
    ]


def claim_cache(cache: str | Path, signature: dict[str, Any]) -> Path:
    """Stamp ``cache`` with the settings its entries are made with, or refuse a mismatch.

    A resumable job skips the entries already in its cache folder, so a rerun with other
    settings would silently mix the two. The first run writes ``cache_signature.json``; a
    later run with a different ``signature`` gets a ``ValueError`` that names each setting
    that differs, with the cached value and its own. ``signature`` must be JSON-able.
    Returns the stamp's path.
    """
    stamp = Path(cache) / "cache_signature.json"
    current = json.loads(json.dumps(signature))  # compare as JSON, as it is stored
    if stamp.is_file():
        cached = json.loads(stamp.read_text())
        if cached != current:
            diffs = setting_differences(cached, current, "cached", "this run")
            raise ValueError(
                f"{cache} holds entries made with another config or scene version "
                f"({'; '.join(diffs)}); rerun with the cached settings, use another folder, "
                "or delete it to start over"
            )
        return stamp
    return write_json_atomic(stamp, current, indent=None)
