"""Percentile bootstrap over test images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval (NaN where undefined)."""

    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) image indices drawn with replacement; the same seed gives the same resamples."""
    if n < 1:
        raise ValueError("cannot bootstrap over zero images")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def percentile_interval(estimate: float, samples: np.ndarray, confidence: float) -> Interval:
    """The (1 - confidence) / 2 and (1 + confidence) / 2 percentiles of the finite bootstrap samples."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    finite = np.asarray(samples, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return Interval(float(estimate), float("nan"), float("nan"))
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return Interval(float(estimate), float(low), float(high))
