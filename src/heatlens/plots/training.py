"""Figures of a training run's test evaluation: confusion matrices, ROC curves, recall history.

Figures are built without pyplot, so no GUI backend is ever needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator

from heatlens.plots.common import LINE_STYLES, class_colour, class_colours, ellipsise, wrap_caption


def draw_confusion_matrix(ax: Axes, counts: np.ndarray, class_names: Sequence[str], title: str,
                          fontsize: float = 10, xlabel: str = "predicted", ylabel: str = "true") -> AxesImage:
    """Counts and row percentages (recall per true class) in each cell; colour = row fraction."""
    counts = np.asarray(counts)
    totals = counts.sum(1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if fractions[row, col] > 0.5 else "black"
        ax.text(col, row, f"{count}\n{fractions[row, col]:.0%}", ha="center", va="center", color=colour,
                fontsize=fontsize)
    ticks = range(len(class_names))
    labels = [ellipsise(name, 18) for name in class_names]
    if len(class_names) <= 6:  # upright, wrapped: slanted labels' boxes run into their neighbours
        ax.set_xticks(ticks, [wrap_caption(label, 13) for label in labels])
    else:
        ax.set_xticks(ticks, labels, rotation=90)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return image


def confusion_matrix_figure(counts: np.ndarray, class_names: Sequence[str], title: str) -> Figure:
    """Counts and row percentages (recall per true class) in each cell; colour = row fraction."""
    size = 1.4 + 1.1 * len(class_names)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    image = draw_confusion_matrix(ax, counts, class_names, title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    return fig


def _curve_style(k: int) -> dict:
    """Curve k of a figure: drawn first widest and lowest, later ones thinner, dashed and on top, so a
    curve lying on another stays visible as a coloured edge around it."""
    return {"lw": max(3.0 - 0.5 * k, 1.0), "ls": LINE_STYLES[k % len(LINE_STYLES)], "zorder": 2 + 0.1 * k}


def _crowded_corner(curves: Mapping[str, Mapping[str, np.ndarray | float]]) -> tuple[float, float] | None:
    """(largest FPR, smallest TPR) of the top-left region holding every curve's rise to 90 % TPR, or None
    when that region is most of the plot (nothing crowded to zoom into)."""
    reach = [float(np.min(np.asarray(c["fpr"])[np.asarray(c["tpr"]) >= 0.9], initial=1.0)) for c in curves.values()]
    fpr_max = next((edge for edge in (0.05, 0.1, 0.2, 0.3) if edge >= 1.5 * max(reach, default=1.0)), None)
    if fpr_max is None:
        return None
    # where the curves enter the corner: their TPR a quarter of the way in
    at_edge = [float(np.interp(fpr_max / 4, c["fpr"], c["tpr"])) for c in curves.values()]
    tpr_min = np.floor(min(at_edge) * 20) / 20 - 0.05
    return (fpr_max, tpr_min) if tpr_min >= 0.5 else None


def roc_figure(curves: Mapping[str, Mapping[str, np.ndarray | float]], title: str = "One-vs-rest ROC (test)",
               class_names: Sequence[str] | None = None) -> Figure:
    """One ROC curve per class (`class_names`, the dataset's list, gives each its colour) with its AUROC
    in the legend, the chance diagonal, and an inset magnifying the top-left corner when curves crowd there."""
    colours = class_colours(class_names if class_names is not None else list(curves))
    rows = -(-(len(curves) + 1) // (1 if len(curves) < 4 else 2))
    fig = Figure(figsize=(5.6, 5.9 + 0.16 * rows), layout="constrained")
    ax = fig.subplots()
    corner = _crowded_corner(curves) if curves else None
    inset = ax.inset_axes([0.5, 0.05, 0.47, 0.42]) if corner else None
    for k, (name, curve) in enumerate(curves.items()):
        style = {"color": colours.get(name, class_colour(k)), **_curve_style(k)}
        ax.plot(curve["fpr"], curve["tpr"], label=f"{name} (AUROC {curve['auc']:.3f})", clip_on=False, **style)
        if inset is not None:
            inset.plot(curve["fpr"], curve["tpr"], clip_on=True, **style)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance (AUROC 0.5)")
    # a margin beyond 0 and 1: a perfect curve runs along the left and top edges, not under the frame
    ax.set_xlim(-0.02, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity, recall)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if inset is not None:
        inset.set_xlim(-0.02 * corner[0], corner[0])
        inset.set_ylim(corner[1], 1.0 + 0.02 * (1.0 - corner[1]))
        inset.tick_params(labelsize=7)
        inset.grid(alpha=0.3)
        inset.set_title("top-left corner, magnified", fontsize=7)
        ax.indicate_inset([0, corner[1], corner[0], 1 - corner[1]], edgecolor="dimgray")
    ncol = 1 if len(curves) < 4 else 2
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=ncol, fontsize=8,
               title="later curves thinner and dashed: none hides another", title_fontsize=7)
    return fig


def recall_history_figure(
    history: Mapping[str, Sequence[tuple[int, float]]], selected_epoch: int | None = None,
    title: str = "Validation recall per class", ylabel: str = "recall", class_names: Sequence[str] | None = None,
) -> Figure:
    """Recall per class (colours from `class_names`, else the order of `history`) across epochs, any
    series named "... mean" in black; a line marks the selected checkpoint."""
    classes = [name for name in history if "mean" not in name]
    colours = class_colours(class_names if class_names is not None else classes)
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for name, points in history.items():
        if points:
            epochs, values = zip(*points)
            mean = "mean" in name
            ax.plot(epochs, values, marker="o", ms=3, lw=2 if mean else 1.5, ls="--" if mean else "-",
                    color="black" if mean else colours.get(name, class_colour(classes.index(name))), label=name)
    if selected_epoch is not None:
        ax.axvline(selected_epoch, color="dimgray", lw=1, ls=":", label=f"selected (epoch {selected_epoch})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
