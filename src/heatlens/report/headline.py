"""The headline numbers of one run, read from its metrics dict (console table and summary figure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from heatlens.report.runs import DEGENERATE_TAG

# (label, metric, what it is compared with: (label, metric) or None)
PLAIN = (
    ("test accuracy", "test/acc", None),
    ("test macro recall", "test/recall_macro", None),
    ("AOPC MoRF", "xai/aopc_morf", None),
    ("AOPC LeRF", "xai/aopc_lerf", None),
    ("AOPC random order", "xai/aopc_random", None),
)
# Multi-label runs (they log test/ap_macro) lead with per-finding ranking; multi-class runs log a macro
# AUROC too but keep accuracy and macro recall as their headline.
MULTILABEL = (
    ("test macro AUROC", "test/auroc_macro", None),
    ("test macro average precision", "test/ap_macro", None),
)
KNN = ("k-NN accuracy on embeddings", "xai/knn_acc_embedding", ("raw pixels", "xai/knn_acc_raw"))
MASS = "xai/loc/{kind}/relevance_mass_accuracy"
UNIFORM_MASS = "xai/loc/{kind}/uniform_relevance_mass_accuracy"
# The lesion (or tumour) mask says more about what a model looks at than the lung mask: listed first.
KIND_ORDER = ("lesion", "tumor", "mask", "lung")
# Operating points shown (classes in name order): more rows would crowd the summary figure.
MAX_OPERATING_POINTS = 4


@dataclass(frozen=True)
class HeadlineRow:
    label: str
    value: float
    reference: str = ""  # "uniform map 0.033"
    low: float = math.nan  # bootstrap interval, when the metric has one
    high: float = math.nan

    def formatted(self) -> str:
        if math.isfinite(self.low) and math.isfinite(self.high):
            return _with_interval(self.value, self.low, self.high)
        return f"{self.value:.3f}"


def _with_interval(value: float, low: float, high: float) -> str:
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def _present(metrics: Mapping[str, float], key: str) -> bool:
    value = metrics.get(key)
    return value is not None and not math.isnan(float(value))


def headline_rows(metrics: Mapping[str, float]) -> list[HeadlineRow]:
    """Test accuracy, macro recall (multi-label: macro AUROC and AP first), ECE and the operating points (clinical_rows), AOPC MoRF / LeRF / random, relevance mass in each mask kind vs a
    uniform map, k-NN accuracy on embeddings vs raw pixels; metrics the run lacks are left out."""
    leading = (*MULTILABEL, *PLAIN) if _present(metrics, "test/ap_macro") else PLAIN
    rows = [HeadlineRow(label, float(metrics[key])) for label, key, _ in leading if _present(metrics, key)]
    tested = sum(key.startswith("test/") for _, key, _ in leading if _present(metrics, key))
    rows[tested:tested] = clinical_rows(metrics)
    kinds = {key.split("/")[2] for key in metrics if key.startswith("xai/loc/") and key.endswith("/relevance_mass_accuracy")}
    for kind in sorted(kinds, key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER), k)):
        key, uniform = MASS.format(kind=kind), UNIFORM_MASS.format(kind=kind)
        if not _present(metrics, key):
            continue
        reference = f"uniform map {float(metrics[uniform]):.3f}" if _present(metrics, uniform) else ""
        rows.append(HeadlineRow(f"relevance mass in {kind} masks", float(metrics[key]), reference))
    label, key, (other_label, other_key) = KNN
    if _present(metrics, key):
        reference = f"{other_label} {float(metrics[other_key]):.3f}" if _present(metrics, other_key) else ""
        rows.append(HeadlineRow(label, float(metrics[key]), reference))
    elif _present(metrics, other_key):
        rows.append(HeadlineRow(f"k-NN accuracy on {other_label}", float(metrics[other_key])))
    return rows


def clinical_rows(metrics: Mapping[str, float]) -> list[HeadlineRow]:
    """ECE (calibrated when a temperature was fitted, vs uncalibrated), then each class's operating-point
    sensitivity with its interval, vs its specificity (docs/guides/clinical-numbers.md)."""
    rows = []
    if _present(metrics, "test/calibrated/ece"):
        reference = f"uncalibrated {float(metrics['test/ece']):.3f}" if _present(metrics, "test/ece") else ""
        label = f"test ECE, temperature {float(metrics.get('val/temperature', math.nan)):.2f}"
        rows.append(HeadlineRow(label, float(metrics["test/calibrated/ece"]), reference))
    elif _present(metrics, "test/ece"):
        rows.append(HeadlineRow("test ECE", float(metrics["test/ece"])))
    prefix = "test/op_sensitivity/"
    names = sorted(key[len(prefix):] for key in metrics if key.startswith(prefix) and _present(metrics, key))
    for name in names[:MAX_OPERATING_POINTS]:
        sensitivity = [float(metrics.get(f"test/op_sensitivity{s}/{name}", math.nan)) for s in ("", "_low", "_high")]
        specificity = [float(metrics.get(f"test/op_specificity{s}/{name}", math.nan)) for s in ("", "_low", "_high")]
        reference = f"specificity {_with_interval(*specificity)}" if math.isfinite(specificity[0]) else ""
        rows.append(HeadlineRow(f"{name} sensitivity (op)", *sensitivity[:1], reference,
                                *sensitivity[1:]))
    return rows


def run_description(params: Mapping[str, str], tags: Mapping[str, str], metrics: Mapping[str, float]) -> str:
    """Markdown of the run's MLflow description: what it is (backbone, data, task, epochs), a warning when
    it predicts fewer classes than its test set holds, and its headline table."""
    backbone = tags.get("backbone") or params.get("backbone.name", "?")
    dataset = tags.get("dataset") or params.get("data.name", "?")
    source = params.get("data.root") if params.get("data.root") not in (None, "None", "") else None
    data = f"`{source}`" if source else f"{params.get('data.num_images', '?')} generated phantom images"
    tested = tags.get("selected_checkpoint", "").rsplit("/", 1)[-1]
    epochs = str(params.get("trainer.max_epochs", "?"))
    lines = [f"**{backbone}** on **{dataset}** ({data}): {params.get('data.task', 'multiclass')}, "
             f"up to {epochs} epoch{'' if epochs == '1' else 's'}, seed {params.get('seed', '?')}"
             + (f", tested checkpoint `{tested}`." if tested else "."), ""]
    if tags.get(DEGENERATE_TAG):
        lines += [f"**Warning:** the model {tags[DEGENERATE_TAG]}.", ""]
    rows = headline_rows(metrics)
    if rows:
        lines += ["| headline | value | compared with |", "|---|---|---|"]
        lines += [f"| {row.label} | {row.formatted()} | {row.reference} |" for row in rows]
        lines.append("")
    lines.append("`summary.png`: the run at a glance; `figures/`, `reports/`, `explain/`: the details.")
    return "\n".join(lines)
