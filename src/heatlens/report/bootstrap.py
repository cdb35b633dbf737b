"""Bootstrap intervals and the paired bootstrap test between two runs on the same test images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from heatlens.clinical.intervals import Interval
from heatlens.report.errors import CompareError
from heatlens.report.metrics import mean_value

# A statistic maps resampled per-image columns (same length, same row order) to one number.
Statistic = Callable[..., float]


@dataclass(frozen=True)
class PairedResult:
    """Difference statistic(A) - statistic(B) with its interval and two-sided p-value."""

    metric: str
    run_a: str
    run_b: str
    value_a: float
    value_b: float
    difference: Interval
    p_value: float
    n_images: int
    n_boot: int


def _bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    if n == 0:
        raise CompareError("cannot bootstrap over zero images")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise CompareError(f"confidence must lie in (0, 1), got {confidence}")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.nanpercentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def mean_interval(
    values: Sequence[float] | np.ndarray, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Mean of per-image values with a percentile bootstrap interval (NaNs dropped)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    idx = _bootstrap_indices(len(values), n_boot, seed)
    boot_means = values[idx].mean(axis=1)
    return Interval(float(values.mean()), *_percentiles(boot_means, confidence))


def paired_bootstrap(
    statistic: Statistic,
    columns_a: Sequence[np.ndarray],
    columns_b: Sequence[np.ndarray],
    *,
    metric: str = "metric",
    run_a: str = "A",
    run_b: str = "B",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """Paired bootstrap of statistic(A) - statistic(B): both runs resampled with the SAME image indices.

    `columns_a` / `columns_b` hold per-image arrays aligned row by row (the same image in the same
    row for both runs). The p-value tests "no difference" two-sided by centring the bootstrap
    differences on zero (Efron & Tibshirani 1993, §16.4): p = (1 + #|d* - d| >= |d|) / (B + 1).
    """
    lengths = {len(c) for c in (*columns_a, *columns_b)}
    if len(lengths) != 1:
        raise CompareError(f"paired columns differ in length: {sorted(lengths)} (images must be matched by id)")
    n = lengths.pop()
    value_a = float(statistic(*columns_a))
    value_b = float(statistic(*columns_b))
    observed = value_a - value_b
    idx = _bootstrap_indices(n, n_boot, seed)
    if statistic is mean_value and len(columns_a) == len(columns_b) == 1:
        # Vectorised fast path for the common case (per-image AOPC): one call instead of n_boot.
        diffs = np.nanmean(np.asarray(columns_a[0], float)[idx], axis=1) - np.nanmean(
            np.asarray(columns_b[0], float)[idx], axis=1
        )
    else:
        diffs = np.array([statistic(*(c[i] for c in columns_a)) - statistic(*(c[i] for c in columns_b)) for i in idx])
    # Tolerance: identical runs give exactly zero differences; rounding must not count as "extreme".
    extreme = np.abs(diffs - observed) >= abs(observed) - 1e-12
    p_value = (1.0 + np.count_nonzero(extreme)) / (n_boot + 1.0)
    low, high = _percentiles(diffs, confidence)
    return PairedResult(
        metric, run_a, run_b, value_a, value_b, Interval(observed, low, high), float(p_value), n, n_boot
    )
