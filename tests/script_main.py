"""What a script's ``main(argv)`` gave when a test ran it in-process (``run_main`` in
``conftest.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MainRun:
    """The exit status the shell would have seen, and what ``main`` wrote."""

    returncode: int
    stdout: str
    stderr: str


def exit_status(code: object) -> int:
    """The status the shell sees for ``sys.exit(code)`` or ``return code`` from ``main``."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1
