"""Streaming heatmap statistics: the C x C grid of average heatmaps, box-plot summaries, composite.

Nothing here keeps the heatmaps themselves: sums per (true class, explained class) and a bounded
uniform reservoir of raw values per cell for the quartiles, so 20 000 heatmaps (or any number) cost
the same memory as a few.
"""

import numpy as np
import torch

from heatlens.explain._common import to_numpy
from heatlens.explain.errors import ExplainError

SUMMARY_FIELDS = ("min", "q1", "median", "q3", "max")


class HeatmapStats:
    """Accumulates raw heatmaps (B, C, h, w) with their true labels (B,).

    `mean_grid()[t, c]` is the average heatmap explaining class c over images of true class t.
    Box summaries use exact min / max and quartiles of a uniform reservoir sample of at most
    `reservoir_size` values per cell (exact while a cell has seen no more values than that).
    """

    def __init__(self, num_classes: int, shape: tuple[int, int], reservoir_size: int = 200_000, seed: int = 0):
        if num_classes < 1 or len(shape) != 2 or min(shape) < 1:
            raise ExplainError(f"HeatmapStats needs num_classes >= 1 and shape (h, w), got {num_classes}, {shape}")
        self.num_classes = num_classes
        self.shape = tuple(int(s) for s in shape)
        self.reservoir_size = reservoir_size
        self._rng = np.random.default_rng(seed)
        self._sum = np.zeros((num_classes, num_classes, *self.shape), dtype=np.float64)
        self.counts = np.zeros(num_classes, dtype=np.int64)
        self._min = np.full((num_classes, num_classes), np.inf)
        self._max = np.full((num_classes, num_classes), -np.inf)
        self._seen = np.zeros((num_classes, num_classes), dtype=np.int64)
        self._reservoir = np.empty((num_classes, num_classes, reservoir_size), dtype=np.float32)

    def update(self, maps: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> None:
        """Add a batch: maps (B, C, h, w) raw heatmaps for every class, labels (B,) true classes."""
        maps, labels = to_numpy(maps).astype(np.float64, copy=False), to_numpy(labels).astype(np.int64)
        expected = (self.num_classes, *self.shape)
        if maps.ndim != 4 or maps.shape[1:] != expected or labels.shape != (maps.shape[0],):
            raise ExplainError(f"update needs maps (B, {expected[0]}, {expected[1]}, {expected[2]}) and labels "
                               f"(B,), got {maps.shape} and {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ExplainError(f"labels must lie in [0, {self.num_classes}), got {np.unique(labels).tolist()}")
        np.add.at(self._sum, labels, maps)
        self.counts += np.bincount(labels, minlength=self.num_classes)
        for t in np.unique(labels):
            cell_maps = maps[labels == t]
            for c in range(self.num_classes):
                self._add_values(t, c, cell_maps[:, c].ravel())

    def _add_values(self, t: int, c: int, values: np.ndarray) -> None:
        """Vectorised reservoir sampling (Algorithm R): value i survives with probability size / (i + 1)."""
        self._min[t, c] = min(self._min[t, c], values.min())
        self._max[t, c] = max(self._max[t, c], values.max())
        seen, size = self._seen[t, c], self.reservoir_size
        positions = seen + np.arange(values.size)
        free = positions < size
        self._reservoir[t, c, positions[free]] = values[free]
        late = ~free
        slots = (self._rng.random(int(late.sum())) * (positions[late] + 1)).astype(np.int64)
        hit = slots < size
        # Repeated slots: numpy assigns in order, so the later value wins, as in the sequential algorithm.
        self._reservoir[t, c, slots[hit]] = values[late][hit]
        self._seen[t, c] = seen + values.size

    def mean_grid(self) -> np.ndarray:
        """(C, C, h, w) float32 [true class, explained class]; NaN for classes with no image."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self._sum / self.counts[:, None, None, None]).astype(np.float32)

    def mean_explained(self) -> np.ndarray:
        """(C, h, w) average heatmap of each class over images of that class (the grid's diagonal)."""
        grid = self.mean_grid()
        return np.stack([grid[c, c] for c in range(self.num_classes)])

    def box_summaries(self) -> np.ndarray:
        """(C, C, 5) [min, q1, median, q3, max] of raw values per (true, explained) cell; NaN if empty."""
        out = np.full((self.num_classes, self.num_classes, 5), np.nan)
        for t in range(self.num_classes):
            for c in range(self.num_classes):
                n = min(self._seen[t, c], self.reservoir_size)
                if n:
                    q1, med, q3 = np.percentile(self._reservoir[t, c, :n], [25, 50, 75])
                    out[t, c] = (self._min[t, c], q1, med, q3, self._max[t, c])
        return out


def finite_mean(values: np.ndarray) -> float:
    """Mean ignoring NaN (no mask, no relevance), NaN for no value, without numpy's empty-slice warning."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def class_means(values: np.ndarray, groups: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, ...) float64 mean of the rows of `values` (N, ...) in each group of `groups` (N,); NaN for a
    class without rows."""
    sums = np.zeros((num_classes, *values.shape[1:]))
    np.add.at(sums, groups, values)
    counts = np.bincount(groups, minlength=num_classes).reshape(-1, *[1] * (values.ndim - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def four_colour_composite(mean_maps: torch.Tensor | np.ndarray) -> np.ndarray:
    """(h, w) int: for every pixel, the class whose min-max normalised average heatmap is largest."""
    maps = to_numpy(mean_maps).astype(np.float64)
    if maps.ndim != 3:
        raise ExplainError(f"mean_maps must be (C, h, w), got shape {maps.shape}")
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    normalised = (maps - low) / np.where(span > 0, span, 1.0)
    return normalised.argmax(axis=0)
