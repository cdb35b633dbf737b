"""Shared shape of a benchmark result and a wall-clock helper."""

import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class BenchResult:
    key: str
    ratio: float  # > 1: heatlens faster; for *_vs_forward: fraction of forward throughput
    ours: str  # human-readable measurement, e.g. "412 img/s"
    reference: str
    setting: str  # device, sizes, batch
    # Measurements behind the ratio that a table of docs/benchmarks.md needs (e.g. per-phase times of `scale`).
    details: dict[str, Any] | None = None


def best_time(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Best wall time of `repeats` calls after `warmup` untimed calls (least noisy on a shared CPU)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
