from __future__ import annotations

import pytest

from executor_core.method.stats import difference_interval, success_rate, wilson_interval


def test_wilson_hand_computed() -> None:
    # 8/10: centre (0.8 + 1.92/10) / 1.384 = 0.7168, half-width 0.2265
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    # 0/10 keeps a non-zero upper bound (the normal interval would be [0, 0])
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)


def test_newcombe_difference_published_example() -> None:
    # Newcombe (1998), Stat. Med. 17:873, example (a), method 10:
    # 56/70 - 48/80 = 0.2000, 95 % CI [0.0524, 0.3339]
    d, low, high = difference_interval(success_rate(56, 70), success_rate(48, 80))
    assert d == pytest.approx(0.2)
    assert low == pytest.approx(0.0524, abs=5e-4)
    assert high == pytest.approx(0.3339, abs=5e-4)


def test_bad_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="n must be > 0"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="11"):
        wilson_interval(11, 10)
