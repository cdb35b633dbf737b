"""How well the classes separate in raw pixels and in the learned embedding (k-NN, silhouette, t-SNE)."""

from __future__ import annotations

import logging
from functools import partial

import numpy as np

from heatlens.callbacks.base import ExplanationCallback, Findings
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import embeddings
from heatlens.explain.sampling import strata
from heatlens.plots import explain as plots

log = logging.getLogger(__name__)


def _separation(x: np.ndarray, y: np.ndarray, k: int, seed: int) -> tuple[float, float]:
    """(k-NN accuracy, silhouette) on the classes that have at least 2 samples; NaN when fewer than 2 such classes."""
    counts = np.bincount(y)
    kept = np.isin(y, np.flatnonzero(counts >= 2))
    if len(np.unique(y[kept])) < 2 or kept.sum() < 4:
        log.warning("embeddings: fewer than 2 classes with 2+ samples among %d images: scores are NaN", len(y))
        return float("nan"), float("nan")
    return (embeddings.knn_accuracy(x[kept], y[kept], k=min(k, int(kept.sum()) - 1), seed=seed),
            embeddings.silhouette(x[kept], y[kept], seed=seed))


class EmbeddingsCallback(ExplanationCallback):
    """Penultimate embeddings and raw pixels (area-resized to `raw_size`) of the explained images:
    `xai/knn_acc_{raw,embedding}`, `xai/silhouette_{raw,embedding}`, the side-by-side t-SNE figure
    and `explain/embeddings.npz` (embeddings and both t-SNE maps). Multi-label images count under their
    first positive finding, or "no finding"."""

    name = "embeddings"

    def __init__(self, raw_size: int = 32, knn_k: int = 5, seed: int = 0) -> None:
        self.raw_size = raw_size
        self.knn_k = knn_k
        self.seed = seed

    def explain(self, sample: ExplainedSample) -> Findings | None:
        vectors, raw, labels = [], [], []
        for batch in sample.batches("explain: embeddings"):
            vectors.append(embeddings.penultimate_embeddings(sample.net, batch.images))
            raw.append(embeddings.raw_pixels(batch.images, size=self.raw_size))
            labels.append(batch.labels.numpy())
        rows = {name: np.concatenate(parts) if parts else np.empty(0, np.float32)
                for name, parts in (("embedding", vectors), ("raw", raw), ("labels", labels))}
        gathered = sample.gather(rows)
        if gathered is None or len(gathered["index"]) < 4:
            return None
        y = strata(gathered["labels"])  # multi-label: the first positive finding, K for none
        names = [*sample.class_names, "no finding"] if sample.multilabel else sample.class_names
        knn_raw, silhouette_raw = _separation(gathered["raw"], y, self.knn_k, self.seed)
        knn_emb, silhouette_emb = _separation(gathered["embedding"], y, self.knn_k, self.seed)
        with sample.timer.stage("tsne"), sample.progress(2, "explain: t-SNE") as advance:
            tsne_raw = embeddings.tsne_2d(gathered["raw"], seed=self.seed, n_jobs=1)
            advance(1)
            tsne_emb = embeddings.tsne_2d(gathered["embedding"], seed=self.seed, n_jobs=1)
            advance(1)
        subtitles = (f"k-NN acc {knn_raw:.3f}, silhouette {silhouette_raw:.3f}",
                     f"k-NN acc {knn_emb:.3f}, silhouette {silhouette_emb:.3f}")
        return Findings(
            metrics={"xai/knn_acc_raw": knn_raw, "xai/knn_acc_embedding": knn_emb,
                     "xai/silhouette_raw": silhouette_raw, "xai/silhouette_embedding": silhouette_emb},
            figures={"figures/embeddings/tsne.png": partial(plots.tsne_side_by_side, tsne_raw, tsne_emb, y, names,
                                                            subtitles)},
            arrays={"explain/embeddings.npz": dict(
                ids=gathered["ids"], index=gathered["index"], labels=y,
                embeddings=gathered["embedding"].astype(np.float32), tsne_raw=tsne_raw, tsne_embedding=tsne_emb,
                class_names=np.asarray(names))})
