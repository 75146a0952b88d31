from __future__ import annotations

import numpy as np
import pytest

from self_distillation.judges.programmatic import ProgrammaticJudge
from self_distillation.plausibility import PlausibilityConfig, physics_plausibility

EPISODE = {"scene": {"cubes": ["red", "blue"]}}


def _frames(red_u: list[int | None], size: int = 32) -> np.ndarray:
    frames = np.zeros((len(red_u), size, size, 3), np.uint8)
    frames[:] = (150, 140, 125)  # table
    for t, u in enumerate(red_u):
        frames[t, 20:26, 2:8] = (30, 60, 220)  # a blue cube that stays put
        if u is not None:
            frames[t, 10:16, u : u + 6] = (220, 30, 30)
    return frames


def test_smooth_motion_is_plausible() -> None:
    score, details = physics_plausibility(_frames([2, 4, 6, 8, 10]), EPISODE, ProgrammaticJudge())
    assert score == 1.0
    assert details["red"]["max_jump_fraction"] == pytest.approx(2 / 32)


def test_teleport_and_vanishing_are_penalised() -> None:
    judge = ProgrammaticJudge()
    teleport, details = physics_plausibility(_frames([2, 2, 24, 24, 24]), EPISODE, judge)
    assert teleport == 0.5  # red fails, blue passes
    assert not details["red"]["ok"]
    vanish, details = physics_plausibility(_frames([2, None, None, None, 2]), EPISODE, judge)
    assert vanish == 0.5
    assert details["red"]["hidden_fraction"] == pytest.approx(0.6)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match=r"1\.5"):
        PlausibilityConfig(max_jump_fraction=1.5)
