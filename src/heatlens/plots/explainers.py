"""Figures of the explainer comparison: the leaderboard (methods x metrics) and the same images under every method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from heatlens.plots.common import as_display_image, ellipsise, panel_size, resize_to


def leaderboard_figure(board: Mapping) -> Figure:
    """Methods (rows, best mean rank first) x metrics (columns): cells coloured by rank (green = best),
    written with the estimate; the best method of each metric boxed; a last column with the mean rank.

    `board` is what `heatlens.explain.scoring.leaderboard` returns.
    """
    methods, metrics, scores = list(board["methods"]), list(board["metrics"]), board["scores"]
    ranks = np.array([[scores[m][k]["rank"] or np.nan for k in metrics] for m in methods], dtype=float)
    fig = Figure(figsize=(1.0 * len(metrics) + 3.2, 0.42 * len(methods) + 2.2), layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["RdYlGn_r"]
    shown = np.column_stack([ranks, [board["mean_rank"][m] for m in methods]])
    ax.imshow(shown, cmap=cmap, vmin=1, vmax=max(len(methods), 2), aspect="auto")
    for row, method in enumerate(methods):
        for col, metric in enumerate(metrics):
            estimate = scores[method][metric]["estimate"]
            ax.text(col, row, "–" if not np.isfinite(estimate) else f"{estimate:.3g}", ha="center", va="center",
                    fontsize=7)
            if scores[method][metric]["rank"] == 1:
                ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
        ax.text(len(metrics), row, f"{board['mean_rank'][method]:.1f}", ha="center", va="center", fontsize=8,
                fontweight="bold")
    arrows = ["↑" if scores[methods[0]][k]["higher_is_better"] else "↓" for k in metrics] if methods else []
    ax.set_xticks(range(len(metrics) + 1))
    ax.set_xticklabels([f"{ellipsise(k, 22)} {a}" for k, a in zip(metrics, arrows)] + ["mean rank"],
                       rotation=50, ha="right", fontsize=8)
    ax.set_yticks(range(len(methods)))
    ax.set_yticklabels(methods, fontsize=8)
    ax.axvline(len(metrics) - 0.5, color="black", linewidth=1)
    ax.set_title("Explainer leaderboard: colour = rank (green best), boxed = best per metric,\n"
                 "text = mean over images; ↑ higher is better, ↓ lower is better", fontsize=9)
    return fig


def examples_figure(images: np.ndarray, maps: Mapping[str, np.ndarray], titles: Sequence[str]) -> Figure:
    """One row per image, the image then one column per method; each method's column shares one colour
    scale (its minimum and maximum over the images shown), so rows compare within a method."""
    methods = list(maps)
    rows, cols = max(len(images), 1), 1 + len(methods)
    width, height = panel_size(np.shape(images)[1:], 1.6)
    fig = Figure(figsize=(width * cols, (height + 0.35) * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for row, (image, title) in enumerate(zip(images, titles)):
        base, cmap = as_display_image(image)
        axes[row, 0].imshow(base, cmap=cmap, vmin=0, vmax=1)
        axes[row, 0].set_title(ellipsise(title, 26), fontsize=7)
        for col, method in enumerate(methods, start=1):
            column = np.asarray(maps[method], dtype=np.float32)
            low, high = float(np.nanmin(column)), float(np.nanmax(column))
            axes[row, col].imshow(resize_to(column[row], base.shape[:2]), cmap="inferno", vmin=low,
                                  vmax=high if high > low else low + 1)
            if row == 0:
                axes[row, col].set_title(method, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    return fig
