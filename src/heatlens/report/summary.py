"""A run's `summary.png` from what the run logged: its npz arrays and its metrics (pure: no MLflow)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.figure import Figure

from heatlens.explain import cam
from heatlens.plots.summary import Overlay, summary_figure
from heatlens.report.headline import headline_rows
from heatlens.report.metrics import aopc_per_image
from heatlens.report.runs import ExplainArrays, explain_arrays_from_npz


def _counts(arrays: ExplainArrays, num_classes: int) -> np.ndarray | None:
    # Multi-label labels (N, K) have no confusion matrix of exclusive classes.
    if arrays.labels is None or arrays.preds is None or np.ndim(arrays.labels) != 1:
        return None
    flat = arrays.labels * num_classes + arrays.preds
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _overlays(arrays: ExplainArrays, class_names: list[str], max_overlays: int) -> list[Overlay]:
    """One correctly classified image per class (the first in sample order; a misclassified one when
    the class has none), with the ReLU'd Grad-CAM of the predicted class, max-scaled. Multi-label
    (labels (N, K)): one image positive for each finding, found (p >= 0.5) if any, with that finding's map."""
    heatmaps = arrays.heatmaps
    if heatmaps is None or heatmaps.maps.ndim != 4:
        return []
    preds = heatmaps.preds if heatmaps.preds is not None else heatmaps.labels
    multilabel = np.ndim(heatmaps.labels) == 2
    overlays = []
    for c, name in enumerate(class_names):
        if multilabel:
            positive, hit = heatmaps.labels[:, c] == 1, preds[:, c] == 1
        else:
            positive, hit = heatmaps.labels == c, preds == c
        candidates = np.flatnonzero(positive & hit)
        if not len(candidates):
            candidates = np.flatnonzero(positive)
        if not len(candidates) or len(overlays) == max_overlays:
            continue
        row = int(candidates[0])
        shown = c if multilabel else int(preds[row])
        heat = cam.relu(torch.as_tensor(np.asarray(heatmaps.maps[row, shown], dtype=np.float32)))
        heat = (heat / heat.max().clamp_min(1e-12)).numpy()
        image = heatmaps.thumbnails[row] if heatmaps.thumbnails is not None else None
        file = heatmaps.ids[row].rsplit('/', 1)[-1]
        if multilabel:
            caption = f"has {name}\n{'found' if hit[row] else 'MISSED'}: map of {name}\n{file}"
        else:
            verdict = "correct" if shown == c else "WRONG"
            caption = f"true {name}\n{verdict}: map of {class_names[shown]}\n{file}"
        overlays.append(Overlay(image, heat, caption))
    return overlays


def run_summary_figure(files: Mapping[str, Mapping[str, np.ndarray]], metrics: Mapping[str, float],
                       title: str = "", max_overlays: int = 4) -> Figure:
    """`summary.png` of one run. `files`: the run's npz files by stem, as `heatlens.tracking.query.
    read_explain_arrays` returns them (`test_predictions` for the confusion matrix, else the explained
    images' predictions; `aopc` curves; `gradcam` heatmaps and, when stored, thumbnails); `metrics`:
    the run's logged metrics (headline numbers, AOPC values)."""
    arrays = explain_arrays_from_npz(files)
    headline = [(row.label, row.formatted(), row.reference) for row in headline_rows(metrics)]
    if arrays is None or not arrays.class_names:
        return summary_figure([], headline=headline, title=title)
    class_names = list(arrays.class_names)
    aopc = {order: float(metrics[f"xai/aopc_{order}"]) if f"xai/aopc_{order}" in metrics
            else float(np.nanmean(aopc_per_image(curves))) for order, curves in arrays.curves.items()}
    return summary_figure(class_names, counts=_counts(arrays, len(class_names)), curves=arrays.curves or None,
                          aopc=aopc, overlays=_overlays(arrays, class_names, max_overlays), headline=headline,
                          title=title)
