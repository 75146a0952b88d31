"""Fixtures of the IDM tests (helpers live in ``idm_synthetic.py``)."""

from __future__ import annotations

import os
from pathlib import Path

# Offscreen rendering for the replay test; set before any test module imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from idm_synthetic import write_synthetic_dataset


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("idm") / "synthetic")
