"""Per-image-set statistics the paired bootstrap resamples: macro recall, macro F1, accuracy, AOPC,
AUROC of one finding and macro AUROC (multi-label, unknown labels left out).

Written with numpy bincount rather than sklearn.metrics: the bootstrap calls them thousands of
times and sklearn's input validation costs ~1 ms per call (tests check equality with sklearn).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

from heatlens.explain import perturbation


def _confusion_counts(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    flat = labels.astype(np.int64) * num_classes + preds.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _num_classes(labels: np.ndarray, preds: np.ndarray) -> int:
    return int(max(labels.max(initial=0), preds.max(initial=0))) + 1


def _present(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    # Classes that occur as a label or a prediction: the macro average of sklearn and torchmetrics.
    return np.bincount(np.concatenate([labels, preds]).astype(np.int64), minlength=num_classes) > 0


def per_class_recall(labels: np.ndarray, preds: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Recall of each class; 0 for a class with no true sample."""
    num_classes = num_classes or _num_classes(labels, preds)
    counts = _confusion_counts(labels, preds, num_classes)
    support = counts.sum(axis=1)
    return np.divide(np.diag(counts), support, out=np.zeros(num_classes), where=support > 0)


def macro_recall(labels: np.ndarray, preds: np.ndarray) -> float:
    """Mean recall over the classes occurring as label or prediction (as sklearn / torchmetrics)."""
    num_classes = _num_classes(labels, preds)
    return float(per_class_recall(labels, preds, num_classes)[_present(labels, preds, num_classes)].mean())


def macro_f1(labels: np.ndarray, preds: np.ndarray) -> float:
    """Mean F1 over the classes occurring as label or prediction (F1 = 0 where no true positive)."""
    num_classes = _num_classes(labels, preds)
    counts = _confusion_counts(labels, preds, num_classes)
    true_pos = np.diag(counts).astype(np.float64)
    denominator = counts.sum(axis=1) + counts.sum(axis=0)
    f1 = np.divide(2.0 * true_pos, denominator, out=np.zeros_like(true_pos), where=denominator > 0)
    return float(f1[_present(labels, preds, num_classes)].mean())


def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """Fraction of correct predictions."""
    return float(np.mean(labels == preds))


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of one finding (labels 1 / 0 / NaN = unknown, left out) by the Mann-Whitney U statistic
    with tied scores ranked by their mean; NaN without both a positive and a negative."""
    labels, scores = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    known = ~np.isnan(labels)
    positive, scores = labels[known] == 1, scores[known]
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc_macro(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean AUROC over the findings (columns) that have a positive and a negative known label."""
    values = [auroc(labels[:, k], probs[:, k]) for k in range(labels.shape[1])]
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def mean_value(values: np.ndarray) -> float:
    """Mean of per-image values (per-image AOPC, localisation scores), NaNs ignored."""
    return float(np.nanmean(values))


def aopc_per_image(curves: np.ndarray) -> np.ndarray:
    """Per-image AOPC of stored perturbation curves (N, L+1), in float64: the explain library's definition."""
    return perturbation.aopc_per_image(torch.as_tensor(np.asarray(curves, dtype=np.float64))).numpy()
