"""Fixtures of the IDM tests (helpers live in ``idm_synthetic.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from idm_synthetic import write_synthetic_dataset


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("idm") / "synthetic")
