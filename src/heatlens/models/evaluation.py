"""Post-test evaluation from predicted probabilities: report, confusion, ROC, operating points."""

from __future__ import annotations

from dataclasses import asdict, dataclass

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


@dataclass
class OperatingPoint:
    """A one-vs-rest decision `probs[:, class] >= threshold`, chosen on validation data."""

    class_name: str
    threshold: float
    # [[TN, FP], [FN, TP]] on the test set.
    test_confusion: list[list[int]]
    test_sensitivity: float
    test_specificity: float

    def to_dict(self) -> dict:
        return asdict(self)


def operating_point(
    class_index: int, class_name: str, val: dict[str, np.ndarray], test: dict[str, np.ndarray]
) -> OperatingPoint | None:
    """The highest threshold with no false negative on the validation set, applied to the test set.

    None when the validation set has no sample of the class.
    """
    val_positive = val["labels"] == class_index
    if not val_positive.any():
        return None
    threshold = float(val["probs"][val_positive, class_index].min())
    test_positive = test["labels"] == class_index
    predicted = test["probs"][:, class_index] >= threshold
    confusion = metrics.confusion_matrix(test_positive, predicted, labels=[False, True])
    (tn, fp), (fn, tp) = confusion
    return OperatingPoint(
        class_name=class_name,
        threshold=threshold,
        test_confusion=confusion.tolist(),
        test_sensitivity=float(tp / (tp + fn)) if tp + fn else float("nan"),
        test_specificity=float(tn / (tn + fp)) if tn + fp else float("nan"),
    )
