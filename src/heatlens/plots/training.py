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

from heatlens.plots.common import ellipsise


def draw_confusion_matrix(ax: Axes, counts: np.ndarray, class_names: Sequence[str], title: str,
                          fontsize: float = 10) -> AxesImage:
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
    ax.set_xticks(ticks, labels, rotation=30, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
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


def roc_figure(curves: Mapping[str, Mapping[str, np.ndarray | float]], title: str = "One-vs-rest ROC (test)") -> Figure:
    """One ROC curve per class with its AUC in the legend, and the chance diagonal."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for name, curve in curves.items():
        ax.plot(curve["fpr"], curve["tpr"], lw=2, label=f"{name} (AUC {curve['auc']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def recall_history_figure(
    history: Mapping[str, Sequence[tuple[int, float]]], selected_epoch: int | None = None,
    title: str = "Validation recall per class",
) -> Figure:
    """Recall per class (and any extra series) across epochs; a line marks the selected checkpoint."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, points in history.items():
        if points:
            epochs, values = zip(*points)
            ax.plot(epochs, values, marker="o", ms=3, lw=2 if "mean" in name else 1.5,
                    ls="--" if "mean" in name else "-", label=name)
    if selected_epoch is not None:
        ax.axvline(selected_epoch, color="black", lw=1, ls=":", label=f"selected (epoch {selected_epoch})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epoch")
    ax.set_ylabel("recall")
    ax.set_title(title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
