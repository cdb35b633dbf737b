"""The headline numbers of one run, read from its metrics dict (console table and summary figure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# (label, metric, what it is compared with: (label, metric) or None)
PLAIN = (
    ("test accuracy", "test/acc", None),
    ("test macro recall", "test/recall_macro", None),
    ("AOPC MoRF", "xai/aopc_morf", None),
    ("AOPC LeRF", "xai/aopc_lerf", None),
    ("AOPC random order", "xai/aopc_random", None),
)
KNN = ("k-NN accuracy on embeddings", "xai/knn_acc_embedding", ("raw pixels", "xai/knn_acc_raw"))
MASS = "xai/loc/{kind}/relevance_mass_accuracy"
UNIFORM_MASS = "xai/loc/{kind}/uniform_relevance_mass_accuracy"
# The lesion (or tumour) mask says more about what a model looks at than the lung mask: listed first.
KIND_ORDER = ("lesion", "tumor", "mask", "lung")


@dataclass(frozen=True)
class HeadlineRow:
    label: str
    value: float
    reference: str = ""  # "uniform map 0.033"

    def formatted(self) -> str:
        return f"{self.value:.3f}"


def _present(metrics: Mapping[str, float], key: str) -> bool:
    value = metrics.get(key)
    return value is not None and not math.isnan(float(value))


def headline_rows(metrics: Mapping[str, float]) -> list[HeadlineRow]:
    """Test accuracy, macro recall, AOPC MoRF / LeRF / random, relevance mass in each mask kind vs a
    uniform map, k-NN accuracy on embeddings vs raw pixels; metrics the run lacks are left out."""
    rows = [HeadlineRow(label, float(metrics[key])) for label, key, _ in PLAIN if _present(metrics, key)]
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
