"""Per-image-set statistics the paired bootstrap resamples: macro recall, macro F1, accuracy, AOPC.

Written with numpy bincount rather than sklearn.metrics: the bootstrap calls them thousands of
times and sklearn's input validation costs ~1 ms per call (tests check equality with sklearn).
"""

from __future__ import annotations

import numpy as np


def _confusion_counts(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    flat = labels.astype(np.int64) * num_classes + preds.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _num_classes(labels: np.ndarray, preds: np.ndarray) -> int:
    return int(max(labels.max(initial=0), preds.max(initial=0))) + 1


def per_class_recall(labels: np.ndarray, preds: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Recall of each class; NaN for a class with no true sample."""
    num_classes = num_classes or _num_classes(labels, preds)
    counts = _confusion_counts(labels, preds, num_classes)
    support = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(counts) / support, np.nan)


def macro_recall(labels: np.ndarray, preds: np.ndarray) -> float:
    """Mean recall over the classes present among the labels."""
    return float(np.nanmean(per_class_recall(labels, preds)))


def macro_f1(labels: np.ndarray, preds: np.ndarray) -> float:
    """Mean F1 over the classes present among the labels (F1 = 0 where a class is never predicted right)."""
    counts = _confusion_counts(labels, preds, _num_classes(labels, preds))
    true_pos = np.diag(counts).astype(np.float64)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    denominator = support + predicted
    f1 = np.divide(2.0 * true_pos, denominator, out=np.zeros_like(true_pos), where=denominator > 0)
    return float(f1[support > 0].mean())


def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """Fraction of correct predictions."""
    return float(np.mean(labels == preds))


def mean_value(values: np.ndarray) -> float:
    """Mean of per-image values (per-image AOPC, localisation scores), NaNs ignored."""
    return float(np.nanmean(values))


def aopc_per_image(curves: np.ndarray) -> np.ndarray:
    """Per-image AOPC of perturbation curves (N, L+1): mean over steps k=0..L of f(x0) - f(xk) (Samek et al. 2017)."""
    curves = np.asarray(curves, dtype=np.float64)
    return (curves[:, :1] - curves).mean(axis=1)
