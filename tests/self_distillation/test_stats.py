from __future__ import annotations

import pytest

from self_distillation.stats import (
    difference_interval,
    paired_difference,
    success_rate,
    wilson_interval,
)


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


def test_paired_difference_hand_cases() -> None:
    same = {f"i{k}": [True, False] for k in range(10)}
    assert paired_difference(same, same) == (0.0, 0.0, 0.0)
    # a wins one extra sample on every item: the difference is exactly +0.5 in every resample
    better = {f"i{k}": [True, True] for k in range(10)}
    assert paired_difference(better, same) == pytest.approx((0.5, 0.5, 0.5))
    # +1 on 3 of 10 items, 0 elsewhere: diff 0.3; an item bootstrap never goes below 0 or
    # above 1, and the interval brackets the estimate
    a = {f"i{k}": [k < 3] for k in range(10)}
    b = {f"i{k}": [False] for k in range(10)}
    d, low, high = paired_difference(a, b)
    assert d == pytest.approx(0.3)
    assert 0.0 <= low < 0.3 < high <= 0.7


def test_paired_difference_is_tighter_than_newcombe_for_paired_outcomes() -> None:
    # two conditions that agree on 90 of 100 items and differ on 10 (8 for a, 2 for b)
    a = {f"i{k}": [k < 50 or 90 <= k < 98] for k in range(100)}
    b = {f"i{k}": [k < 50 or k >= 98] for k in range(100)}
    d, low, high = paired_difference(a, b)
    nd, nlow, nhigh = difference_interval(success_rate(58, 100), success_rate(52, 100))
    assert d == pytest.approx(nd) == pytest.approx(0.06)
    assert high - low < 0.5 * (nhigh - nlow)


def test_paired_difference_level_widens_the_interval_and_is_validated() -> None:
    a = {f"i{k}": [k % 3 == 0] for k in range(60)}
    b = {f"i{k}": [k % 5 == 0] for k in range(60)}
    d95, low95, high95 = paired_difference(a, b)
    d975, low975, high975 = paired_difference(a, b, level=0.975)
    assert d95 == d975
    assert low975 < low95 < d95 < high95 < high975  # same resamples, further out
    with pytest.raises(ValueError, match="level must be in \\(0, 1\\), got 95"):
        paired_difference(a, b, level=95)


def test_paired_difference_rejects_unpaired_input() -> None:
    with pytest.raises(ValueError, match="'x'"):
        paired_difference({"x": [True]}, {"y": [True]})
    with pytest.raises(ValueError, match="item 'x': 2 vs 1"):
        paired_difference({"x": [True, False]}, {"x": [True]})
