"""Shared fixtures: one small env per test module (building the scene takes ~0.1 s, the
EGL context more), offscreen rendering, one torch/BLAS thread on the shared 2 cores."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from executor_sim import EnvConfig, TabletopEnv, make_env


@pytest.fixture(scope="module")
def env() -> TabletopEnv:
    environment = make_env(EnvConfig(image_size_px=64))
    yield environment
    environment.close()
