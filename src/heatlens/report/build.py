"""Build the comparison report's content (tables, paired tests, figures) from RunData; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from heatlens.plots import compare as compare_plots
from heatlens.clinical import apply_temperature, brier_score, calibration_summary, negative_log_likelihood
from heatlens.report import metrics as M
from heatlens.report.bootstrap import Interval, PairedResult, paired_bootstrap
from heatlens.report.errors import CompareError
from heatlens.report.runs import PERTURBATION_ORDERS, HeatmapSet, RunData
from heatlens.report.tables import (
    CALIBRATION_METRICS,
    PAIRED_METRICS,
    ReportOptions,
    split_fingerprint,
    summary_table,
    methods_table,
    suspect_clusters,
    runs_by_test_set,
)


@dataclass
class Report:
    """Everything the writer turns into Markdown/HTML/PNG."""

    title: str
    summary: pd.DataFrame
    pair: list[PairedResult] = field(default_factory=list)
    correlations: dict[str, pd.DataFrame] = field(default_factory=dict)
    suspect_clusters: pd.DataFrame | None = None
    methods: pd.DataFrame | None = None
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def check_same_test_set(run_a: RunData, run_b: RunData) -> None:
    """Refuse to pair two runs unless both test-set hashes are known and equal."""
    hash_a, hash_b = split_fingerprint(run_a), split_fingerprint(run_b)
    if hash_a is None or hash_b is None:
        missing = run_a.label if hash_a is None else run_b.label
        raise CompareError(f"cannot pair runs: run {missing} has no test-set hash and no explain arrays")
    if hash_a != hash_b:
        raise CompareError(
            f"cannot pair runs {run_a.label} and {run_b.label}: their test sets differ "
            f"(test-set hash {hash_a[:12]} vs {hash_b[:12]}); pair only runs evaluated on the same test split"
        )


def _matched_predictions(run_a: RunData, run_b: RunData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    arrays_a, arrays_b = run_a.require_arrays("paired recall/F1"), run_b.require_arrays("paired recall/F1")
    if arrays_a.labels is None or arrays_a.preds is None or arrays_b.labels is None or arrays_b.preds is None:
        raise CompareError(f"runs {run_a.label} / {run_b.label} stored no labels/predictions in explain/*.npz")
    common = np.intersect1d(arrays_a.ids, arrays_b.ids)
    rows_a, rows_b = arrays_a.rows_for(common), arrays_b.rows_for(common)
    labels_a, labels_b = arrays_a.labels[rows_a], arrays_b.labels[rows_b]
    if not np.array_equal(labels_a, labels_b):
        raise CompareError(f"runs {run_a.label} and {run_b.label} disagree on the labels of the same sample ids")
    return labels_a, arrays_a.preds[rows_a], labels_b, arrays_b.preds[rows_b]


def _matched_probs(run_a: RunData, run_b: RunData, calibrated: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """[labels, probs] of each run on the images both stored, probs temperature-scaled with each run's
    own `val/temperature` when `calibrated`."""
    columns = []
    arrays = [run.require_arrays("paired calibration") for run in (run_a, run_b)]
    common = np.intersect1d(arrays[0].ids, arrays[1].ids)
    for run, stored in zip((run_a, run_b), arrays):
        if stored.probs is None or stored.labels is None:
            raise CompareError(f"run {run.label} stored no test probabilities (reports/test_predictions.npz)")
        rows = stored.rows_for(common)
        probs = np.asarray(stored.probs[rows], dtype=np.float64)
        if calibrated:
            if "val/temperature" not in run.metrics:
                raise CompareError(f"run {run.label} fitted no temperature (clinical.calibration=none)")
            probs = apply_temperature(probs, run.metrics["val/temperature"])
        columns.append([stored.labels[rows], probs])
    return columns[0], columns[1]


def _top_label_ece(labels: np.ndarray, probs: np.ndarray) -> float:
    return calibration_summary(probs, labels).ece


# Statistics of (labels, probs): ECE with the run's default 15 equal-width bins.
CALIBRATION_STATISTICS = {
    "ece": _top_label_ece, "ece_calibrated": _top_label_ece,
    "brier": lambda labels, probs: brier_score(probs, labels),
    "nll": lambda labels, probs: negative_log_likelihood(probs, labels),
}


def _matched_aopc(run_a: RunData, run_b: RunData, order: str) -> tuple[np.ndarray, np.ndarray]:
    values_a, values_b = run_a.aopc_values(order), run_b.aopc_values(order)
    if values_a is None or values_b is None:
        missing = run_a.label if values_a is None else run_b.label
        raise CompareError(f"run {missing} stored no {order} perturbation curves in explain/*.npz")
    # Curves may cover only correctly classified images: pair the images both runs explained.
    common = np.intersect1d(values_a[0], values_b[0])
    if len(common) == 0:
        raise CompareError(f"runs {run_a.label} and {run_b.label} share no image with {order} curves")
    index_a = {i: row for row, i in enumerate(values_a[0].tolist())}
    index_b = {i: row for row, i in enumerate(values_b[0].tolist())}
    return (
        values_a[1][[index_a[i] for i in common.tolist()]],
        values_b[1][[index_b[i] for i in common.tolist()]],
    )


def is_multilabel(run: RunData) -> bool:
    """Whether the run stored multi-label test labels: an (N, K) matrix of 1 / 0 / NaN."""
    return run.arrays is not None and run.arrays.labels is not None and np.ndim(run.arrays.labels) == 2


def _finding_auroc(k: int):
    return lambda labels, probs: M.auroc(labels[:, k], probs[:, k])


def _paired_multilabel(run_a: RunData, run_b: RunData, options: ReportOptions,
                       notes: list[str] | None) -> list[PairedResult]:
    """Multi-label pairs: macro AUROC and the AUROC of every finding on the stored test probabilities,
    plus the AOPC metrics asked for; the single-label ones are skipped with one note."""
    findings = run_a.class_names
    if run_b.class_names != findings:
        raise CompareError(f"cannot pair runs {run_a.label} and {run_b.label}: their findings differ "
                           f"({findings} vs {run_b.class_names})")
    columns_a, columns_b = _matched_probs(run_a, run_b, calibrated=False)
    if not np.array_equal(columns_a[0], columns_b[0], equal_nan=True):
        raise CompareError(f"runs {run_a.label} and {run_b.label} disagree on the labels of the same sample ids")
    kwargs = dict(run_a=run_a.label, run_b=run_b.label, n_boot=options.n_boot, confidence=options.confidence,
                  seed=options.seed)
    results = [paired_bootstrap(M.auroc_macro, columns_a, columns_b, metric="auroc_macro", **kwargs)]
    results += [paired_bootstrap(_finding_auroc(k), columns_a, columns_b, metric=f"auroc/{name}", **kwargs)
                for k, name in enumerate(findings)]
    skipped = [m for m in options.paired_metrics if not m.startswith("aopc_")]
    if skipped and notes is not None:
        notes.append(f"paired {', '.join(skipped)} skipped: multi-label runs are paired on AUROC per finding")
    aopc = [m for m in options.paired_metrics if m.startswith("aopc_")]
    if aopc:
        results += paired_comparison(run_a, run_b, _with_metrics(options, aopc), notes)
    return results


def _with_metrics(options: ReportOptions, metrics: list[str]) -> ReportOptions:
    return ReportOptions(options.n_boot, options.confidence, options.seed, options.max_images, options.heatmap_size,
                         metrics)


def paired_comparison(
    run_a: RunData, run_b: RunData, options: ReportOptions, notes: list[str] | None = None
) -> list[PairedResult]:
    """Paired bootstrap A - B for each metric in options.paired_metrics (multi-label runs: macro AUROC
    and the AUROC of each finding, then any AOPC metric asked for).

    With `notes` given, a metric the runs lack data for (e.g. AOPC of runs trained with
    explain=none) is skipped and explained there; without, it raises. Different test sets always raise.
    """
    check_same_test_set(run_a, run_b)
    if (is_multilabel(run_a) or is_multilabel(run_b)) and any(not m.startswith("aopc_")
                                                                   for m in options.paired_metrics):
        return _paired_multilabel(run_a, run_b, options, notes)
    statistics = {"recall_macro": M.macro_recall, "f1_macro": M.macro_f1, "acc": M.accuracy}
    results = []
    for metric in options.paired_metrics:
        if not metric.startswith("aopc_") and metric not in statistics and metric not in CALIBRATION_METRICS:
            raise CompareError(f"unknown paired metric {metric!r}; choose from "
                               f"{', '.join(PAIRED_METRICS + CALIBRATION_METRICS)}")
        kwargs = dict(
            metric=metric,
            run_a=run_a.label,
            run_b=run_b.label,
            n_boot=options.n_boot,
            confidence=options.confidence,
            seed=options.seed,
        )
        try:
            if metric in CALIBRATION_METRICS:
                columns_a, columns_b = _matched_probs(run_a, run_b, calibrated=metric == "ece_calibrated")
                results.append(paired_bootstrap(CALIBRATION_STATISTICS[metric], columns_a, columns_b, **kwargs))
            elif metric.startswith("aopc_"):
                values_a, values_b = _matched_aopc(run_a, run_b, metric.removeprefix("aopc_"))
                results.append(paired_bootstrap(M.mean_value, [values_a], [values_b], **kwargs))
            else:
                labels_a, preds_a, labels_b, preds_b = _matched_predictions(run_a, run_b)
                results.append(paired_bootstrap(statistics[metric], [labels_a, preds_a], [labels_b, preds_b], **kwargs))
        except CompareError as error:
            if notes is None:
                raise
            notes.append(f"paired {metric} skipped: {error}")
    return results


def _heatmaps_of(run: RunData) -> HeatmapSet:
    heatmaps = run.require_arrays("heatmaps").heatmaps
    if heatmaps is None:
        raise CompareError(f"run {run.label} stored no heatmaps in explain/*.npz")
    return heatmaps


def _class_maps(heatmaps: HeatmapSet, rows: np.ndarray, class_index: int | None, size: int) -> torch.Tensor:
    """Raw maps of `rows` (for `class_index` when all classes are stored) upsampled to size x size."""
    selected = heatmaps.maps[rows]
    if selected.ndim == 4:
        selected = selected[:, class_index] if class_index is not None else selected.mean(axis=1)
    tensor = torch.as_tensor(np.asarray(selected, dtype=np.float32)).unsqueeze(1)
    return F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False).squeeze(1)


def _of_class(labels: np.ndarray, class_index: int) -> np.ndarray:
    """Whether each image is of the class (multi-class) or positive for the finding (multi-label)."""
    return labels == class_index if np.ndim(labels) == 1 else labels[:, class_index] == 1


def _shown_class(labels: np.ndarray) -> np.ndarray:
    """The class whose map an image is shown with: its label, or (multi-label) its first positive
    finding, -1 for an image without any."""
    if np.ndim(labels) == 1:
        return labels
    positive = labels == 1
    return np.where(positive.any(axis=1), positive.argmax(axis=1), -1)


def heatmap_correlations(runs: Sequence[RunData], options: ReportOptions) -> dict[str, pd.DataFrame]:
    """Per class: Pearson correlation between runs' average (true-class) heatmaps, at a common size
    (multi-label: per finding, the images positive for it)."""
    class_names = runs[0].class_names
    tables = {}
    for class_index, class_name in enumerate(class_names):
        averages = []
        for run in runs:
            heatmaps = _heatmaps_of(run)
            rows = np.flatnonzero(_of_class(heatmaps.labels, class_index))
            if len(rows) == 0:
                break
            averages.append(_class_maps(heatmaps, rows, class_index, options.heatmap_size).mean(dim=0).flatten())
        else:
            matrix = np.corrcoef(torch.stack(averages).numpy())
            tables[class_name] = pd.DataFrame(matrix, index=[r.label for r in runs], columns=[r.label for r in runs])
    return tables


def _example_ids(runs: Sequence[RunData], max_images: int) -> np.ndarray:
    """Up to max_images ids every run explained, taking classes in turn so each class appears."""
    common = _heatmaps_of(runs[0]).ids
    for run in runs[1:]:
        common = np.intersect1d(common, _heatmaps_of(run).ids)
    common = np.sort(common)
    first = _heatmaps_of(runs[0])
    labels = _shown_class(first.labels[first.rows_for(common)])
    by_class = [list(common[labels == c]) for c in np.unique(labels) if c >= 0]
    chosen: list[str] = []
    while len(chosen) < max_images and any(by_class):
        for queue in by_class:
            if queue and len(chosen) < max_images:
                chosen.append(queue.pop(0))
    return np.array(chosen, dtype=str)


def _thumbnails(runs: Sequence[RunData], ids: np.ndarray) -> np.ndarray | None:
    """The explained images of `ids` from the first run that stored thumbnails of all of them."""
    for run in runs:
        heatmaps = _heatmaps_of(run)
        if heatmaps.thumbnails is not None:
            return np.asarray(heatmaps.thumbnails)[heatmaps.rows_for(ids)]
    return None


def side_by_side(runs: Sequence[RunData], options: ReportOptions) -> Figure:
    """The same test images explained by every run (true-class Grad-CAM, ReLU, max-scaled per image),
    over the images themselves when a run stored thumbnails."""
    ids = _example_ids(runs, options.max_images)
    if len(ids) == 0:
        raise CompareError("the runs share no explained test image")
    class_names = runs[0].class_names
    thumbnails = _thumbnails(runs, ids)
    size = thumbnails.shape[1] if thumbnails is not None else options.heatmap_size
    grids, cell_titles = [], []
    for run in runs:
        heatmaps = _heatmaps_of(run)
        rows = heatmaps.rows_for(ids)
        labels = _shown_class(heatmaps.labels[rows])
        maps = torch.cat(
            [_class_maps(heatmaps, rows[i : i + 1], int(labels[i]), size) for i in range(len(rows))]
        ).clamp_min(0)
        # An all-zero map stays zero (the figure says "no positive relevance") instead of becoming NaN.
        peak = maps.flatten(1).amax(dim=1).clamp_min(1e-12)
        grids.append((maps / peak[:, None, None]).numpy())
        preds = heatmaps.preds[rows] if heatmaps.preds is not None else [None] * len(rows)
        if heatmaps.preds is not None and np.ndim(heatmaps.preds) == 2:  # multi-label: the shown finding
            cell_titles.append(["found" if p[y] else "missed" for p, y in zip(preds, labels)])
        else:
            cell_titles.append([f"pred {class_names[p]}" if p is not None else "" for p in preds])
    first = _heatmaps_of(runs[0])
    labels = _shown_class(first.labels[first.rows_for(ids)])
    # Ids are often relative paths: the file name is what tells images apart in a narrow column.
    image_titles = [f"{i.rsplit('/', 1)[-1]}\n{class_names[y]}" for i, y in zip(ids, labels)]
    return compare_plots.side_by_side_figure(
        np.stack(grids), [r.label for r in runs], image_titles, cell_titles, images=thumbnails
    )


def mean_curves(runs: Sequence[RunData]) -> dict[str, dict[str, np.ndarray]]:
    """order -> run label -> mean perturbation curve over the images the run scored (NaN rows skipped)."""
    curves: dict[str, dict[str, np.ndarray]] = {}
    for run in runs:
        if run.arrays is None:
            continue
        for order, values in run.arrays.curves.items():
            scored = values[np.isfinite(values).all(axis=1)]
            if len(scored):
                curves.setdefault(order, {})[run.label] = scored.mean(axis=0)
    return curves


def _largest_test_set_group(runs: Sequence[RunData]) -> tuple[list[RunData], list[str]]:
    groups = runs_by_test_set(runs)
    if not groups:
        return [], ["no run stored explanation arrays: image-level sections skipped"]
    largest = next(iter(groups.values()))
    group = [r for r in largest if r.arrays is not None and r.arrays.heatmaps is not None]
    left_out = [r.label for r in runs if r not in group]
    notes = (
        [f"left out of the image-level sections (other test set or no heatmaps): {', '.join(left_out)}"]
        if left_out
        else []
    )
    return group, notes


def build_report(
    runs: Sequence[RunData],
    options: ReportOptions,
    pair: tuple[RunData, RunData] | None = None,
    title: str = "Run comparison",
) -> Report:
    """Tables, figures and (optionally) the paired bootstrap of `pair` = (A, B)."""
    if not runs:
        raise CompareError("no run to compare (check the experiment name / run ids and their status)")
    report = Report(title=title, summary=summary_table(runs, options), suspect_clusters=suspect_clusters(runs),
                    methods=methods_table(runs))
    report.notes += [f"{run.label} {run.degenerate}: its accuracy and explanations say little about the task"
                     for run in runs if run.degenerate]
    if pair is not None:
        report.pair = paired_comparison(pair[0], pair[1], options, notes=report.notes)
    aopc_columns = [f"aopc_{o}" for o in PERTURBATION_ORDERS if report.summary[f"aopc_{o}"].notna().any()]
    if aopc_columns:
        report.figures["aopc_intervals"] = compare_plots.interval_figure(report.summary, aopc_columns)
    curves = mean_curves(runs)
    if curves:
        report.figures["perturbation_curves"] = compare_plots.perturbation_curves_figure(curves)
    group, notes = _largest_test_set_group(runs)
    report.notes.extend(notes)
    if group:
        try:
            report.figures["side_by_side"] = side_by_side(group, options)
        except CompareError as error:
            report.notes.append(f"side-by-side heatmaps skipped: {error}")
        # One run has nothing to correlate with: no section rather than a 1x1 matrix of 1.00.
        report.correlations = heatmap_correlations(group, options) if len(group) > 1 else {}
        if report.correlations:
            report.figures["heatmap_correlation"] = compare_plots.correlation_figure(report.correlations)
    return report


__all__ = [
    "Interval",
    "Report",
    "ReportOptions",
    "build_report",
    "check_same_test_set",
    "heatmap_correlations",
    "paired_comparison",
    "summary_table",
    "split_fingerprint",
]
