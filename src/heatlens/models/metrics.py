"""torchmetrics collections for validation and test, and the names they are logged under.

Multi-label: unknown labels (NaN) become `UNKNOWN`, which every multi-label metric ignores.
"""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelAUROC,
    MultilabelAveragePrecision,
    MultilabelRecall,
    MultilabelSpecificity,
)

MULTICLASS, MULTILABEL = "multiclass", "multilabel"
TASKS = (MULTICLASS, MULTILABEL)
UNKNOWN = -1
# Sensitivity and specificity during training are read at this threshold on the sigmoid probability; the
# clinical operating points (chosen on val) come with the tested checkpoint's reports.
THRESHOLD = 0.5

PER_CLASS = ("precision", "recall", "f1", "auroc")


def classification_metrics(num_classes: int, with_auroc: bool = True) -> MetricCollection:
    """Accuracy, per-class and macro/weighted precision, recall, F1 (+ per-class and macro AUROC)."""
    metrics = {"acc": MulticlassAccuracy(num_classes, average="micro")}
    for name, metric in (("precision", MulticlassPrecision), ("recall", MulticlassRecall), ("f1", MulticlassF1Score)):
        for average in ("none", "macro", "weighted"):
            metrics[f"{name}_{average}"] = metric(num_classes, average=average)
    if with_auroc:
        metrics["auroc_none"] = MulticlassAUROC(num_classes, average="none")
        metrics["auroc_macro"] = MulticlassAUROC(num_classes, average="macro")
    return MetricCollection(metrics)


def multilabel_metrics(num_labels: int) -> MetricCollection:
    """Per finding and macro AUROC and average precision, per finding sensitivity and specificity at
    THRESHOLD; update with (probabilities, `known_targets(labels)`)."""
    common = dict(num_labels=num_labels, ignore_index=UNKNOWN)
    metrics = {}
    for name, metric in (("auroc", MultilabelAUROC), ("ap", MultilabelAveragePrecision)):
        for average in ("none", "macro"):
            metrics[f"{name}_{average}"] = metric(**common, average=average)
    metrics["sensitivity_none"] = MultilabelRecall(**common, threshold=THRESHOLD, average="none")
    metrics["specificity_none"] = MultilabelSpecificity(**common, threshold=THRESHOLD, average="none")
    return MetricCollection(metrics)


def known_targets(labels: torch.Tensor) -> torch.Tensor:
    """(B, K) float labels with NaN for unknown -> int targets with UNKNOWN there (ignored by the metrics)."""
    return torch.nan_to_num(labels, nan=UNKNOWN).long()


def disease_mean(recall_per_class: torch.Tensor, class_names: list[str], healthy_class: str | None) -> torch.Tensor:
    """Mean recall over every class except the healthy one (all classes when there is none)."""
    keep = [i for i, name in enumerate(class_names) if name != healthy_class]
    return recall_per_class[keep].mean()


def named_values(
    stage: str, computed: dict[str, torch.Tensor], class_names: list[str], healthy_class: str | None
) -> dict[str, torch.Tensor]:
    """Flat names (docs/reference/mlflow-names.md): `<stage>/acc`, `<stage>/recall/<Class>`, `<stage>/f1_macro`, ..."""
    values: dict[str, torch.Tensor] = {}
    for key, value in computed.items():
        name, _, average = key.rpartition("_")
        if key == "acc":
            values[f"{stage}/acc"] = value
        elif average == "none":
            values.update({f"{stage}/{name}/{c}": value[i] for i, c in enumerate(class_names)})
        else:
            values[f"{stage}/{key}"] = value
    if "recall_none" in computed:
        values[f"{stage}/recall_disease_mean"] = disease_mean(computed["recall_none"], class_names, healthy_class)
    return values
