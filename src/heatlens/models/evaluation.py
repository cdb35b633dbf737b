"""Post-test evaluation from predicted probabilities: report, confusion, ROC (operating points: heatlens.clinical)."""

from __future__ import annotations

import numpy as np
from sklearn import metrics


def classification_report(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> tuple[str, dict]:
    """scikit-learn's report as text and as a dict (argmax predictions)."""
    kwargs = dict(
        y_true=labels, y_pred=probs.argmax(1), labels=list(range(len(class_names))),
        target_names=class_names, zero_division=0, digits=4,
    )
    return metrics.classification_report(**kwargs), metrics.classification_report(**kwargs, output_dict=True)


def confusion_matrix(labels: np.ndarray, probs: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class."""
    return metrics.confusion_matrix(labels, probs.argmax(1), labels=list(range(num_classes)))


def roc_curves(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, dict[str, np.ndarray | float]]:
    """One-vs-rest ROC per class with positives and negatives in `labels`: fpr, tpr, auc."""
    curves = {}
    for k, name in enumerate(class_names):
        positive = labels == k
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = metrics.roc_curve(positive, probs[:, k])
        curves[name] = {"fpr": fpr, "tpr": tpr, "auc": float(metrics.auc(fpr, tpr))}
    return curves
