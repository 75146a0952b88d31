"""Tiny pipelines shared by the video-model tests (built from configs, random weights)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def debug_pipe():
    from video_models.configuration_executor import MODEL_PRESETS
    from video_models.modeling_executor import build_pipeline

    pipe = build_pipeline(MODEL_PRESETS["debug"], seed=0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def camera_image() -> np.ndarray:
    """A non-square 'camera' frame with structure (so crops are checkable)."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)


@pytest.fixture
def rendezvous_port() -> int:
    """A TCP port free right now, for a multi-process launch's rendezvous: accelerate's
    default (29500) may be held by another run on the machine, and then the ranks wait for
    each other until the test's timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
