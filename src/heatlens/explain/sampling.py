"""Which test images the explanations look at: a sample that depends only on the test set itself.

Every image gets a place in one order; a sample of N images is the first N of that order, so a
smaller sample (attributions, sanity) is part of a larger one (Grad-CAM, AOPC), and every run on
the same test set explains the same images, whatever its seed or number of processes:
  stratified  every class first (one image each), then each class in proportion to its size
  balanced    classes in turn, as long as a class has images left
  first       test-set positions in order
Within a class, images are taken in the order of the SHA-256 of their id: a fixed pseudo-random
order that does not depend on how the test set is listed. Multi-label images (labels (N, K)) are
stratified by `strata`: their first positive finding, or K for an image without one.
"""

import hashlib
from collections.abc import Sequence

import numpy as np

from heatlens.explain.errors import ExplainError

SAMPLINGS = ("stratified", "balanced", "first")


def _hash_order(ids: Sequence[str]) -> np.ndarray:
    digests = [hashlib.sha256(str(i).encode()).digest() for i in ids]
    return np.asarray(sorted(range(len(ids)), key=lambda k: (digests[k], k)), dtype=np.int64)


def strata(labels: np.ndarray) -> np.ndarray:
    """(N,) int64 class of each image for stratifying: the label itself (multi-class), else the first
    positive finding of an (N, K) label matrix (1 / 0 / NaN), K for none."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        return labels.astype(np.int64)
    positive = labels == 1
    return np.where(positive.any(axis=1), positive.argmax(axis=1), labels.shape[1]).astype(np.int64)


def explanation_order(ids: Sequence[str], labels: np.ndarray, how: str = "stratified") -> np.ndarray:
    """Every position 0..n-1 once, in the order explanations take them."""
    labels = np.asarray(labels, dtype=np.int64)
    if how not in SAMPLINGS:
        raise ExplainError(f"sample={how!r}: choose one of {', '.join(SAMPLINGS)}")
    if len(ids) != len(labels):
        raise ExplainError(f"{len(ids)} ids for {len(labels)} labels")
    if how == "first" or not len(labels):
        return np.arange(len(labels), dtype=np.int64)
    hashed = _hash_order(ids)
    ordered_labels = labels[hashed]
    # rank of each image within its class, in hash order
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(ordered_labels == c)
        rank[members] = np.arange(len(members))
    if how == "balanced":
        key = rank.astype(np.float64)
    else:
        sizes = np.bincount(labels)[ordered_labels]
        # Image r of a class of n_c is due once the sample holds (r + 0.5) / n_c of the test set;
        # the first image of every class comes before all others.
        key = np.where(rank == 0, -1.0, (rank + 0.5) / sizes)
    chosen = np.lexsort((rank, ordered_labels, key))
    return hashed[chosen]


def choose_sample(ids: Sequence[str], labels: np.ndarray, max_images: int | None,
                  how: str = "stratified") -> np.ndarray:
    """The positions of the first `max_images` of `explanation_order` (all when None), sorted."""
    order = explanation_order(ids, labels, how)
    return np.sort(order if max_images is None else order[:max_images])
