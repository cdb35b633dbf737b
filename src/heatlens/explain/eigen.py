"""Eigen-heatmaps: PCA of a set of heatmaps, reconstruction, and correlations between maps.

In memory, `eigen_heatmaps` uses scikit-learn's PCA. For many heatmaps, `EigenAccumulator` streams the
sum and the sum of outer products (D x D, D = h*w pixels) in float64 and diagonalises the covariance
at the end: exact, one pass, memory independent of the number of heatmaps. Components carry a fixed
sign (largest-magnitude pixel positive) so both paths and repeated runs agree.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA

from heatlens.explain._common import to_numpy
from heatlens.explain.errors import ExplainError

MAX_STREAMED_PIXELS = 64 * 64  # D x D float64 covariance: 128 MiB per class at this size; resize bigger maps


@dataclass(frozen=True)
class EigenResult:
    mean: np.ndarray  # (h, w) average heatmap
    components: np.ndarray  # (k, h, w) unit-norm eigen-heatmaps, most variance first
    explained_variance: np.ndarray  # (k,)
    explained_variance_ratio: np.ndarray  # (k,) fraction of the total variance per component
    num_samples: int

    def reconstruct(self, heatmap: np.ndarray | torch.Tensor, k: int | None = None) -> np.ndarray:
        """The heatmap projected on the average plus the first k components (all kept ones by default)."""
        k = len(self.components) if k is None else k
        if not 0 <= k <= len(self.components):
            raise ExplainError(f"k must be between 0 and {len(self.components)} kept components, got {k}")
        h = to_numpy(heatmap).astype(np.float64)
        if h.shape != self.mean.shape:
            raise ExplainError(f"heatmap shape {h.shape} differs from the eigen-heatmaps' {self.mean.shape}")
        basis = self.components[:k].reshape(k, self.mean.size).astype(np.float64)
        centred = (h - self.mean).ravel()
        return (self.mean.ravel() + basis.T @ (basis @ centred)).reshape(self.mean.shape)


def _fixed_sign(components: np.ndarray) -> np.ndarray:
    if not len(components):  # maps without variance (all equal): no component
        return components
    flat = components.reshape(len(components), -1)
    signs = np.sign(flat[np.arange(len(flat)), np.abs(flat).argmax(axis=1)])
    return components * np.where(signs == 0, 1, signs)[:, None, None]


def _keep(variances: np.ndarray, variance: float) -> int:
    """Smallest k whose cumulative variance ratio reaches `variance` (sklearn's rule for a float)."""
    total = variances.sum()
    if total <= 0:
        return 0
    ratios = np.cumsum(variances) / total
    return int(np.searchsorted(ratios, variance, side="right") + 1) if variance < 1 else len(variances)


def _check_variance(variance: float) -> None:
    if not 0 < variance <= 1:
        raise ExplainError(f"variance must be in (0, 1], got {variance}")


def eigen_heatmaps(maps: np.ndarray | torch.Tensor, variance: float = 0.95) -> EigenResult:
    """PCA of heatmaps (N, h, w) keeping enough components to explain `variance` of the variance."""
    _check_variance(variance)
    x = to_numpy(maps).astype(np.float64)
    if x.ndim != 3 or len(x) < 2:
        raise ExplainError(f"maps must be (N, h, w) with N >= 2, got shape {x.shape}")
    shape = x.shape[1:]
    pca = PCA(n_components=None, svd_solver="full").fit(x.reshape(len(x), -1))
    k = min(_keep(pca.explained_variance_, variance), len(pca.components_))
    return EigenResult(
        mean=pca.mean_.reshape(shape),
        components=_fixed_sign(pca.components_[:k].reshape(k, *shape)),
        explained_variance=pca.explained_variance_[:k],
        explained_variance_ratio=pca.explained_variance_ratio_[:k],
        num_samples=len(x),
    )


class EigenAccumulator:
    """Streams heatmaps (B, h, w) into an exact PCA without keeping them (see module docstring)."""

    def __init__(self, shape: tuple[int, int]):
        pixels = int(np.prod(shape))
        if pixels > MAX_STREAMED_PIXELS:
            raise ExplainError(f"heatmap shape {tuple(shape)} has {pixels} pixels, more than the "
                               f"{MAX_STREAMED_PIXELS} a streamed covariance allows: resize the maps first")
        self.shape = tuple(int(s) for s in shape)
        self.count = 0
        self._sum = np.zeros(pixels)
        self._outer = np.zeros((pixels, pixels))

    def update(self, maps: np.ndarray | torch.Tensor) -> None:
        x = to_numpy(maps).astype(np.float64)
        if x.ndim != 3 or x.shape[1:] != self.shape:
            raise ExplainError(f"update needs maps (B, {self.shape[0]}, {self.shape[1]}), got shape {x.shape}")
        flat = x.reshape(len(x), -1)
        self.count += len(flat)
        self._sum += flat.sum(axis=0)
        self._outer += flat.T @ flat

    def result(self, variance: float = 0.95) -> EigenResult:
        _check_variance(variance)
        if self.count < 2:
            raise ExplainError(f"eigen-heatmaps need at least 2 heatmaps, got {self.count}")
        mean = self._sum / self.count
        covariance = (self._outer - self.count * np.outer(mean, mean)) / (self.count - 1)
        values, vectors = np.linalg.eigh(covariance)
        values, vectors = np.clip(values[::-1], 0, None), vectors[:, ::-1].T
        k = min(_keep(values, variance), self.count - 1)
        return EigenResult(
            mean=mean.reshape(self.shape),
            components=_fixed_sign(vectors[:k].reshape(k, *self.shape)),
            explained_variance=values[:k],
            explained_variance_ratio=values[:k] / values.sum(),
            num_samples=self.count,
        )


class ClassEigenAccumulator:
    """One EigenAccumulator per class: `update(maps (B, h, w), labels (B,))`, `results()` -> list."""

    def __init__(self, num_classes: int, shape: tuple[int, int]):
        self.per_class = [EigenAccumulator(shape) for _ in range(num_classes)]

    def update(self, maps: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> None:
        x, y = to_numpy(maps), to_numpy(labels).astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= len(self.per_class)):
            raise ExplainError(f"labels must lie in [0, {len(self.per_class)}), got {np.unique(y).tolist()}")
        for c in np.unique(y):
            self.per_class[c].update(x[y == c])

    def results(self, variance: float = 0.95) -> list[EigenResult | None]:
        """Per class; None for a class with fewer than 2 heatmaps."""
        return [acc.result(variance) if acc.count >= 2 else None for acc in self.per_class]


def correlation_matrix(maps: np.ndarray | torch.Tensor) -> np.ndarray:
    """(M, M) Pearson correlation between M maps (M, h, w), e.g. each class's average and first component."""
    x = to_numpy(maps).astype(np.float64)
    if x.ndim != 3:
        raise ExplainError(f"maps must be (M, h, w), got shape {x.shape}")
    return np.corrcoef(x.reshape(len(x), -1))


def means_and_first_components_correlation(results: list[EigenResult]) -> np.ndarray:
    """(2C, 2C) Pearson matrix over [average of class 0..C-1, first component of class 0..C-1]."""
    if not results or any(r is None or len(r.components) == 0 for r in results):
        raise ExplainError("every class needs an EigenResult with at least one component")
    return correlation_matrix(np.stack([r.mean for r in results] + [r.components[0] for r in results]))


def correlate_sets(means_a: np.ndarray | torch.Tensor, means_b: np.ndarray | torch.Tensor) -> np.ndarray:
    """(C, C) Pearson correlation between the average heatmaps of two sets (two models or datasets).

    Entry [i, j] correlates set A's class i with set B's class j; the diagonal compares like with like.
    Maps of different resolution are bilinearly resized to the larger one.
    """
    a, b = to_numpy(means_a).astype(np.float32), to_numpy(means_b).astype(np.float32)
    if a.ndim != 3 or b.ndim != 3:
        raise ExplainError(f"means must be (C, h, w), got shapes {a.shape} and {b.shape}")
    size = max(a.shape[1:], b.shape[1:], key=lambda s: s[0] * s[1])
    a, b = (_resize(m, size) for m in (a, b))
    joint = np.corrcoef(np.concatenate([a, b]).reshape(len(a) + len(b), -1).astype(np.float64))
    return joint[:len(a), len(a):]


def _resize(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if maps.shape[1:] == tuple(size):
        return maps
    return F.interpolate(torch.from_numpy(maps)[:, None], size=tuple(size), mode="bilinear",
                         align_corners=False)[:, 0].numpy()
