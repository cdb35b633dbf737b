"""The report's tables: one row per run (logged metrics, AOPC with bootstrap intervals, localisation,
k-NN, shortcut audit) and the suspect clusters of the shortcut audit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from heatlens.report.bootstrap import mean_interval
from heatlens.report.runs import PERTURBATION_ORDERS, RunData

PAIRED_METRICS = ("aopc_morf", "aopc_lerf", "aopc_random", "recall_macro", "f1_macro", "acc")
# Paired on the stored test probabilities (conf/compare.yaml lists them; runs without probabilities skip them).
CALIBRATION_METRICS = ("ece", "ece_calibrated", "brier", "nll")
MODEL_METRICS = {
    "params": "model/params_total",
    "trainable": "model/params_trainable",
    "size_mb": "model/size_mb",
    "depth": "model/depth",
    "acc": "test/acc",
    "recall_macro": "test/recall_macro",
    "f1_macro": "test/f1_macro",
    "ece": "test/ece",
    "ece_calibrated": "test/calibrated/ece",
    "brier": "test/brier",
    "nll": "test/nll",
    "aurc": "test/aurc",
}
# Multi-label runs (they log test/ap_macro): macro AUROC / AP and AUROC per finding as well.
MULTILABEL_METRICS = {"auroc_macro": "test/auroc_macro", "ap_macro": "test/ap_macro"}
OPERATING_RATES = ("sensitivity", "specificity")
SHORTCUT_SCORES = ("flag", "outside_mass", "border_mass")
EXAMPLES_PER_CLUSTER = 3


@dataclass
class ReportOptions:
    """Knobs of the report (mirrors conf/compare.yaml)."""

    n_boot: int = 2000
    confidence: float = 0.95
    seed: int = 0
    max_images: int = 6
    heatmap_size: int = 32
    paired_metrics: Sequence[str] = PAIRED_METRICS


def split_fingerprint(run: RunData) -> str | None:
    """The logged test-set hash, else sha256 of the sorted ids in the run's arrays, else None."""
    if run.test_hash:
        return run.test_hash
    if run.arrays is not None:
        return hashlib.sha256("\n".join(sorted(run.arrays.ids.tolist())).encode()).hexdigest()
    return None


def runs_by_test_set(runs: Sequence[RunData]) -> dict[str, list[RunData]]:
    """Runs grouped by test set (fingerprint -> runs, largest group first); runs without one are left out.
    Only runs of one group can be paired or shown image by image."""
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        fingerprint = split_fingerprint(run)
        if fingerprint is not None:
            groups.setdefault(fingerprint, []).append(run)
    return dict(sorted(groups.items(), key=lambda item: -len(item[1])))


def summary_table(runs: Sequence[RunData], options: ReportOptions) -> pd.DataFrame:
    """One row per run: model size, accuracy, recalls, calibration (ECE, Brier, NLL, AURC), operating-point
    sensitivity / specificity with their intervals, AOPC with bootstrap CIs, localisation, k-NN and,
    for runs with a shortcut audit, `shortcut/<Class>/{flag,outside_mass,border_mass}`."""
    class_names = sorted({c for run in runs for c in run.class_names})
    loc_keys = sorted({k for run in runs for k in run.metrics if k.startswith("xai/loc/")})
    operating = [c for c in class_names if any(f"test/op_sensitivity/{c}" in run.metrics for run in runs)]
    shortcut_keys = [f"xai/shortcut/{c}/{score}" for c in class_names for score in SHORTCUT_SCORES
                     if any(f"xai/shortcut/{c}/{score}" in run.metrics for run in runs)]
    multilabel = any("test/ap_macro" in run.metrics for run in runs)
    findings = [c for c in class_names if any(f"test/ap/{c}" in run.metrics for run in runs)]
    rows = []
    for run in runs:
        row: dict[str, object] = {"run": run.label, "run_id": run.run_id, "backbone": run.backbone}
        row["test_set"] = (split_fingerprint(run) or "?")[:12]
        row["warning"] = run.degenerate or ""
        row.update({column: run.metrics.get(key, np.nan) for column, key in MODEL_METRICS.items()})
        if multilabel:
            row.update({column: run.metrics.get(key, np.nan) for column, key in MULTILABEL_METRICS.items()})
            row.update({f"auroc/{c}": run.metrics.get(f"test/auroc/{c}", np.nan) for c in findings})
        row.update({f"recall/{c}": run.metrics.get(f"test/recall/{c}", np.nan) for c in class_names
                    if f"test/recall/{c}" in run.metrics or not multilabel})
        row.update({f"op_{rate}{end}/{c}": run.metrics.get(f"test/op_{rate}{end}/{c}", np.nan)
                    for c in operating for rate in OPERATING_RATES for end in ("", "_low", "_high")})
        for order in PERTURBATION_ORDERS:
            row.update(_aopc_columns(run, order, options))
        row.update({k.removeprefix("xai/"): run.metrics.get(k, np.nan) for k in loc_keys})
        for key in ("xai/knn_acc_raw", "xai/knn_acc_embedding"):
            row[key.removeprefix("xai/")] = run.metrics.get(key, np.nan)
        row.update({k.removeprefix("xai/"): run.metrics.get(k, np.nan) for k in shortcut_keys})
        rows.append(row)
    return pd.DataFrame(rows)


def _aopc_columns(run: RunData, order: str, options: ReportOptions) -> dict[str, float]:
    name = f"aopc_{order}"
    per_image = run.aopc_values(order)
    if per_image is None or len(per_image[1]) == 0:
        return {name: run.metrics.get(f"xai/{name}", np.nan), f"{name}_low": np.nan, f"{name}_high": np.nan}
    interval = mean_interval(per_image[1], options.n_boot, options.confidence, options.seed)
    return {name: interval.estimate, f"{name}_low": interval.low, f"{name}_high": interval.high}


def methods_table(runs: Sequence[RunData]) -> pd.DataFrame:
    """One row per run and explainer scored by the `explainers` step: its mean rank within the run, its
    rank across runs (`cross_run_rank`: methods ordered by their mean rank averaged over the runs that
    scored them, 1 = best) and every `xai/method/<method>/<metric>` as a column."""
    found = sorted({k.split("/")[2] for run in runs for k in run.metrics if k.startswith("xai/method/")})
    metrics = sorted({k.split("/", 3)[3] for run in runs for k in run.metrics
                      if k.startswith("xai/method/") and not k.endswith("/mean_rank")})
    rows = [{"run": run.label, "method": method, "mean_rank": run.metrics[f"xai/method/{method}/mean_rank"],
             **{metric: run.metrics.get(f"xai/method/{method}/{metric}", np.nan) for metric in metrics}}
            for run in runs for method in found if f"xai/method/{method}/mean_rank" in run.metrics]
    table = pd.DataFrame(rows, columns=["run", "method", "mean_rank", *metrics])
    across = table.groupby("method")["mean_rank"].mean().rank(method="min")
    table.insert(3, "cross_run_rank", table["method"].map(across))
    return table.sort_values(["cross_run_rank", "run"], kind="stable").reset_index(drop=True)


def suspect_clusters(runs: Sequence[RunData]) -> pd.DataFrame:
    """One row per suspect cluster of each run's shortcut audit: run, class, cluster, size, example ids."""
    rows = []
    for run in runs:
        clusters = run.arrays.shortcut if run.arrays is not None else None
        if clusters is None or not clusters.suspect.any():
            continue
        labels = clusters.labels
        if labels is None:
            labels = run.arrays.labels[run.arrays.rows_for(clusters.ids)]
        names = run.class_names
        suspect = np.flatnonzero(clusters.suspect)
        for label, cluster in sorted({(int(labels[i]), int(clusters.cluster[i])) for i in suspect}):
            members = np.flatnonzero((labels == label) & (clusters.cluster == cluster))
            examples = [clusters.ids[i].rsplit("/", 1)[-1] for i in members[:EXAMPLES_PER_CLUSTER]]
            rows.append({
                "run": run.label,
                "class": names[label] if label < len(names) else str(label),
                "cluster": cluster,
                "images": len(members),
                "examples": ", ".join(examples) + (", …" if len(members) > len(examples) else ""),
            })
    return pd.DataFrame(rows, columns=["run", "class", "cluster", "images", "examples"])
