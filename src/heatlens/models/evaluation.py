"""Post-test evaluation from predicted probabilities: report, confusion, ROC (operating points: heatlens.clinical).

Multi-label `labels` are (N, K) of 1 / 0 / NaN (unknown): each finding is scored on its known labels,
decisions at heatlens.models.metrics.THRESHOLD.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics

from heatlens.models.metrics import THRESHOLD


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


def _known(labels: np.ndarray, probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(is positive, score) of class / finding k over the images whose label is known."""
    if labels.ndim == 1:
        return labels == k, probs[:, k]
    known = ~np.isnan(labels[:, k])
    return labels[known, k] == 1, probs[known, k]


def roc_curves(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, dict[str, np.ndarray | float]]:
    """One-vs-rest ROC per class (per finding, multi-label) with positives and negatives in `labels`: fpr, tpr, auc."""
    curves = {}
    for k, name in enumerate(class_names):
        positive, scores = _known(labels, probs, k)
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = metrics.roc_curve(positive, scores)
        curves[name] = {"fpr": fpr, "tpr": tpr, "auc": float(metrics.auc(fpr, tpr))}
    return curves


def multilabel_report(labels: np.ndarray, probs: np.ndarray, finding_names: list[str],
                      threshold: float = THRESHOLD) -> tuple[str, dict]:
    """Per finding: known and positive counts, AUROC, average precision, sensitivity and specificity at
    `threshold` (NaN where a finding lacks positives or negatives); as text and as a dict."""
    report = {}
    for k, name in enumerate(finding_names):
        positive, scores = _known(labels, probs, k)
        both = 0 < positive.sum() < len(positive)
        predicted = scores >= threshold
        report[name] = {
            "known": int(len(positive)), "positive": int(positive.sum()),
            "auroc": float(metrics.roc_auc_score(positive, scores)) if both else float("nan"),
            "ap": float(metrics.average_precision_score(positive, scores)) if positive.any() else float("nan"),
            "sensitivity": float(predicted[positive].mean()) if positive.any() else float("nan"),
            "specificity": float((~predicted[~positive]).mean()) if (~positive).any() else float("nan"),
        }
    width = max([len(n) for n in finding_names] + [7])
    columns = ("known", "positive", "auroc", "ap", "sensitivity", "specificity")
    lines = [f"{'finding':>{width}}  " + "  ".join(f"{c:>11}" for c in columns)]
    for name, row in report.items():
        lines.append(f"{name:>{width}}  " + "  ".join(
            f"{row[c]:>11d}" if isinstance(row[c], int) else f"{row[c]:>11.4f}" for c in columns))
    return "\n".join(lines) + f"\n\n(sensitivity / specificity at p >= {threshold})\n", report


def multilabel_confusions(labels: np.ndarray, probs: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """(K, 2, 2) counts per finding over its known labels: [[TN, FP], [FN, TP]] at `threshold`."""
    counts = np.zeros((labels.shape[1], 2, 2), dtype=np.int64)
    for k in range(labels.shape[1]):
        positive, scores = _known(labels, probs, k)
        np.add.at(counts[k], (positive.astype(int), (scores >= threshold).astype(int)), 1)
    return counts
