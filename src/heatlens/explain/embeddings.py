"""Embeddings and how well the classes separate in them: penultimate vectors, raw pixels, t-SNE,
cross-validated k-NN accuracy and silhouette score."""

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heatlens.explain._common import check_model, default_batch_size, eval_mode, model_device, to_numpy
from heatlens.explain.errors import ExplainError


def _batches(images: torch.Tensor | Iterable, batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        yield from images.split(batch_size)
        return
    for batch in images:
        yield batch["image"] if isinstance(batch, dict) else batch


def penultimate_embeddings(model: nn.Module, images: torch.Tensor | Iterable,
                           batch_size: int | None = None) -> np.ndarray:
    """`model.embed` over a tensor (N, C, H, W) or an iterable of batches (tensors or dicts with "image")."""
    check_model(model, ("embed",))
    device = model_device(model)
    batch_size = batch_size or default_batch_size(device)
    out = []
    with eval_mode(model), torch.inference_mode():
        for batch in _batches(images, batch_size):
            out.append(model.embed(batch.to(device)).float().flatten(1).cpu())
    if not out:
        raise ExplainError("penultimate_embeddings got no images")
    return torch.cat(out).numpy()


def raw_pixels(images: torch.Tensor, size: int | None = 32) -> np.ndarray:
    """Images flattened to vectors, first area-resized to size x size (None keeps the resolution)."""
    if images.ndim != 4:
        raise ExplainError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    x = images.float()
    if size is not None:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.flatten(1).cpu().numpy()


FFT_FROM_SAMPLES = 5_000  # measured: Barnes-Hut is faster below a few thousand points, FFT above


def exact_neighbours(data: np.ndarray, k: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (N, k), of every point's k nearest other points (Euclidean).

    Own kNN because one matrix product per block of rows is measurably faster than openTSNE's Annoy
    or tree search in 1 024 dimensions (~7 s instead of ~17 s for 10 000 points). Splitting the work
    into symmetric block pairs halved the products but the extra top-k merges ate the gain.
    """
    x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    squares = (x * x).sum(dim=1)
    indices, distances = [], []
    for start in range(0, len(x), block):
        rows = x[start:start + block]
        d2 = squares[start:start + block, None] - 2 * rows @ x.T + squares[None, :]
        d2[torch.arange(len(rows)), torch.arange(start, start + len(rows))] = float("inf")  # not oneself
        best = d2.topk(k, dim=1, largest=False)
        indices.append(best.indices)
        distances.append(best.values.clamp_min(0).sqrt())
    return torch.cat(indices).numpy(), torch.cat(distances).numpy().astype(np.float64)


def tsne_2d(x: np.ndarray | torch.Tensor, seed: int = 0, perplexity: float = 30.0, n_iter: int = 500,
            early_exaggeration_iter: int = 250, n_jobs: int = 1) -> np.ndarray:
    """(N, 2) openTSNE embedding on exact 3*perplexity nearest neighbours, PCA initialisation;
    FFT-interpolated gradients (O(N) per iteration) for large N, Barnes-Hut for small N.

    Total iterations = early_exaggeration_iter + n_iter (scikit-learn's max_iter counts both).
    The same seed and n_jobs give the same result. n_jobs=1 by default: measured on a shared 2-core
    machine, 2 threads made the FFT iterations 3x slower; pass -1 on an idle multi-core machine.
    """
    from openTSNE import TSNE, affinity
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    data = _as_matrix(x, "x")
    if len(data) <= 3 * perplexity:
        perplexity = max(1.0, (len(data) - 1) / 3)  # openTSNE requires perplexity < N / 3
    neighbours = PrecomputedNeighbors(*exact_neighbours(data, min(len(data) - 1, int(3 * perplexity))))
    affinities = affinity.PerplexityBasedNN(perplexity=perplexity, knn_index=neighbours, n_jobs=n_jobs,
                                            random_state=seed)
    method = "fft" if len(data) >= FFT_FROM_SAMPLES else "bh"
    tsne = TSNE(n_components=2, n_iter=n_iter, early_exaggeration_iter=early_exaggeration_iter,
                negative_gradient_method=method, initialization="pca", random_state=seed, n_jobs=n_jobs,
                verbose=False)
    return np.asarray(tsne.fit(data, affinities=affinities), dtype=np.float32)


def knn_accuracy(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, k: int = 5, folds: int = 5,
                 seed: int = 0) -> float:
    """Mean stratified k-fold accuracy of a k-nearest-neighbour classifier (Euclidean).

    `k` is capped at the smallest training fold, so tiny test sets score instead of failing."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    data, labels = _as_matrix(x, "x"), _labels(y, len(x))
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min())
    if smallest < 2:
        raise ExplainError(f"knn_accuracy needs at least 2 samples per class, a class in y has {smallest}")
    n_splits = min(folds, smallest)
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    smallest_train_fold = len(data) - -(-len(data) // n_splits)
    neighbours = KNeighborsClassifier(n_neighbors=min(k, smallest_train_fold))
    scores = cross_val_score(neighbours, data, labels, cv=splitter, error_score="raise")
    return float(scores.mean())


def silhouette(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, sample_size: int | None = 5000,
               seed: int = 0) -> float:
    """Silhouette score of the labels as clusters (on a seeded subsample of `sample_size` when larger)."""
    from sklearn.metrics import silhouette_score

    data, labels = _as_matrix(x, "x"), _labels(y, len(x))
    if len(np.unique(labels)) < 2:
        raise ExplainError("silhouette needs at least 2 classes in y")
    size = sample_size if sample_size is not None and len(data) > sample_size else None
    return float(silhouette_score(data, labels, sample_size=size, random_state=seed))


def separation_scores(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, seed: int = 0) -> dict[str, float]:
    """{"knn_acc": ..., "silhouette": ...} for one space (raw pixels or embeddings)."""
    return {"knn_acc": knn_accuracy(x, y, seed=seed), "silhouette": silhouette(x, y, seed=seed)}


def _as_matrix(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    data = to_numpy(x).astype(np.float32, copy=False)
    if data.ndim != 2 or len(data) < 4:
        raise ExplainError(f"{name} must be (N, D) with N >= 4, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ExplainError(f"{name} contains NaN or infinite values")
    return data


def _labels(y: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    labels = to_numpy(y).astype(np.int64).ravel()
    if labels.shape != (n,) or labels.min() < 0:
        raise ExplainError(f"y must hold {n} non-negative class indices, got shape {labels.shape}")
    return labels
