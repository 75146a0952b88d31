"""Confidence intervals for success rates (Wilson score) and their differences (Newcombe
for independent samples, an item bootstrap for paired ones).

Wilson instead of the normal approximation because evaluation sets are small (tens of
items) and rates near 0 or 1 are common; the normal interval then leaves [0, 1] or has
zero width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    successes: int
    n: int
    rate: float
    low: float  # 95 % Wilson interval
    high: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "successes": self.successes,
            "n": self.n,
            "rate": self.rate,
            "ci95_low": self.low,
            "ci95_high": self.high,
        }


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n``."""
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n!r}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes!r}")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def success_rate(successes: int, n: int) -> Rate:
    low, high = wilson_interval(successes, n)
    return Rate(successes, n, successes / n, low, high)


def difference_interval(a: Rate, b: Rate) -> tuple[float, float, float]:
    """(rate_a - rate_b, low, high): Newcombe's hybrid score interval (method 10) from the
    two Wilson intervals; for independent samples."""
    d = a.rate - b.rate
    low = d - math.sqrt((a.rate - a.low) ** 2 + (b.high - b.rate) ** 2)
    high = d + math.sqrt((a.high - a.rate) ** 2 + (b.rate - b.low) ** 2)
    return d, max(-1.0, low), min(1.0, high)


def paired_difference(
    a: Mapping[str, Sequence[bool]],
    b: Mapping[str, Sequence[bool]],
    resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """(rate_a - rate_b, low, high) for two conditions scored on the same items; ``low`` and
    ``high`` bound a central ``level`` interval (0.95 by default).

    The evaluation gives every condition the same items and the same sampling seeds, so the
    outcomes are paired; resampling whole items (a cluster bootstrap, percentile interval)
    keeps that pairing and the correlation of samples within an item, which Newcombe's
    independent-samples interval ignores. ``a`` and ``b`` map item id -> per-sample outcomes.
    """
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))[:5]
        raise ValueError(f"paired conditions must cover the same items; unmatched: {only!r}")
    if not a:
        raise ValueError("paired_difference needs at least one item")
    if resamples <= 0:
        raise ValueError(f"resamples must be > 0, got {resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    ids = sorted(a)
    for item in ids:
        if len(a[item]) != len(b[item]) or not a[item]:
            raise ValueError(
                f"item {item!r}: {len(a[item])} vs {len(b[item])} samples; need equal, > 0"
            )
    per_item = np.array([np.mean(a[i], dtype=float) - np.mean(b[i], dtype=float) for i in ids])
    weights = np.array([len(a[i]) for i in ids], dtype=float)
    d = float(np.average(per_item, weights=weights))
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(ids), size=(resamples, len(ids)))
    boot = (per_item[idx] * weights[idx]).sum(1) / weights[idx].sum(1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return d, float(low), float(high)


def mean_interval(
    values: Sequence[float], resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-item scores with a bootstrap percentile 95 %
    interval over items."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_interval needs at least one value")
    if resamples <= 0:
        raise ValueError(f"resamples must be > 0, got {resamples!r}")
    rng = np.random.default_rng(seed)
    boot = x[rng.integers(x.size, size=(resamples, x.size))].mean(axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    return float(x.mean()), float(low), float(high)
