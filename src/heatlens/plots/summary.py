"""One figure per run (`summary.png` at the top of its artifacts) that MLflow's compare view puts side
by side: confusion matrix, perturbation curves, headline numbers and a few Grad-CAM overlays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from heatlens.plots.common import draw_overlay, ellipsise, ellipsise_lines, heatmap_colorbar
from heatlens.plots.perturbation import draw_perturbation_curves

HEADLINE_CHARS = 44  # label and value of a headline number on one line of the panel
AOPC_SHORT_NOTE = ("MoRF: most relevant regions replaced first, higher AOPC = a more faithful map\n"
                   "LeRF: least relevant first, lower AOPC = better; AOPC = mean drop of the score")
from heatlens.plots.training import draw_confusion_matrix


@dataclass(frozen=True)
class Overlay:
    """One test image with its heatmap. image: (H, W), (H, W, 3) or (C, H, W), uint8 or float in [0, 1],
    or None when the run stored no image; heatmap: (h, w) in [0, 1], resized to the image."""

    image: np.ndarray | None
    heatmap: np.ndarray
    caption: str


def summary_figure(class_names: Sequence[str], counts: np.ndarray | None = None,
                   curves: Mapping[str, np.ndarray] | None = None, aopc: Mapping[str, float] | None = None,
                   overlays: Sequence[Overlay] = (), headline: Sequence[tuple[str, str, str]] = (),
                   title: str = "") -> Figure:
    """Top row: test confusion matrix (counts (C, C), rows = true class), mean perturbation curves
    (order -> (N, L+1) curves, `aopc` order -> value for the legend) and the headline numbers
    ((label, formatted value, reference such as "uniform map 0.033" or "") triples); bottom row:
    `overlays` (one per class reads best, at most 5).
    Each part is left out when its input is missing."""
    overlays = list(overlays)[:5]
    panels = [p for p, present in (("confusion", counts is not None), ("curves", bool(curves)),
                                   ("headline", bool(headline))) if present]
    # two text lines (label and value, then the reference) per headline number
    top_height = max(4.2, 0.38 * len(headline) + 0.6) if panels else 0.0
    bottom_height = 2.9 if overlays else 0.0
    fig = Figure(figsize=(13.0, max(top_height + bottom_height + 0.5, 2.0)), layout="constrained")
    if title:
        fig.suptitle(title, fontsize=13)
    if not panels and not overlays:
        fig.text(0.5, 0.5, "nothing to summarise: no test predictions or explanations stored", ha="center")
        return fig
    if panels and overlays:
        top, bottom = fig.subfigures(2, 1, height_ratios=[top_height, bottom_height])
    else:
        top, bottom = (fig, None) if panels else (None, fig)
    if top is not None:
        widths = {"confusion": 1.2, "curves": 1.3, "headline": 1.0}
        axes = top.subplots(1, len(panels), width_ratios=[widths[p] for p in panels], squeeze=False)[0]
        for ax, panel in zip(axes, panels):
            if panel == "confusion":
                small = len(class_names) > 5
                draw_confusion_matrix(ax, counts, class_names, "Test confusion matrix", fontsize=7 if small else 9)
            elif panel == "curves":
                draw_perturbation_curves(ax, curves, aopc or {})
                ax.set_title("Region perturbation (AOPC)")
                ax.set_xlabel(f"perturbation steps (regions replaced)\n{AOPC_SHORT_NOTE}", fontsize=8)
            else:
                _draw_headline(ax, headline)
    if bottom is not None:
        axes = bottom.subplots(1, len(overlays), squeeze=False)[0]
        for ax, overlay in zip(axes, overlays):
            draw_overlay(ax, overlay.image, overlay.heatmap)
            ax.set_title(ellipsise_lines(overlay.caption, 38), fontsize=8)
        heatmap_colorbar(bottom, axes, label="Grad-CAM, scaled per image", shrink=0.85)
    return fig


def _draw_headline(ax, headline: Sequence[tuple[str, str, str]]) -> None:
    """Label on the left, value on the right, the reference it compares with in grey below the label;
    a label too long to sit beside its value is shortened (HEADLINE_CHARS in all)."""
    ax.axis("off")
    ax.set_title("Headline numbers")
    step = 1.0 / max(len(headline) + 0.5, 6)
    for k, (label, value, reference) in enumerate(headline):
        y = 1.0 - (k + 0.5) * step
        ax.text(0.0, y, ellipsise(label, max(HEADLINE_CHARS - len(value), 12)), fontsize=8.5, va="bottom",
                transform=ax.transAxes)
        ax.text(1.0, y, value, fontsize=9, va="bottom", ha="right", weight="bold", transform=ax.transAxes)
        if reference:
            ax.text(0.0, y - 0.005, ellipsise(f"vs {reference}", HEADLINE_CHARS + 4), fontsize=7.5, va="top",
                    color="dimgray", transform=ax.transAxes)
        ax.axhline(y - 0.45 * step, color="lightgray", lw=0.6)
