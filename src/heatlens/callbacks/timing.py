"""Wall time per named stage of the post-fit explanations (logged as `time/<stage>_s`)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Wall time per named stage, exclusive: a nested stage's time is not counted in its parent."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._open: list[list] = []  # [name, start of the current slice]

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        now = time.perf_counter()
        if self._open:
            parent = self._open[-1]
            self.totals[parent[0]] += now - parent[1]
        self._open.append([name, now])
        try:
            yield
        finally:
            end = time.perf_counter()
            finished = self._open.pop()
            self.totals[finished[0]] += end - finished[1]
            if self._open:
                self._open[-1][1] = end

    def metrics(self) -> dict[str, float]:
        return {f"time/{name}_s": seconds for name, seconds in self.totals.items()}
