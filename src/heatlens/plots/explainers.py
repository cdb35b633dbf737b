"""Figures of the explainer comparison: the leaderboard (methods x metrics) and the same images under every method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from heatlens.plots.common import as_display_image, panel_size, resize_to, wrap_caption


FAMILY_ORDER = ("faithfulness", "localisation", "randomisation", "robustness", "complexity")


def leaderboard_figure(board: Mapping) -> Figure:
    """Methods (rows, best mean rank first) x metrics (columns, grouped by family): cells coloured by rank
    (green = best), written with the estimate; the best method of each metric boxed; a last column with
    the mean rank.

    `board` is what `heatlens.explain.scoring.leaderboard` returns.
    """
    methods, scores = list(board["methods"]), board["scores"]
    metrics = _by_family(list(board["metrics"]), scores, methods)
    ranks = np.array([[scores[m][k]["rank"] or np.nan for k in metrics] for m in methods], dtype=float)
    fig = Figure(figsize=(0.95 * len(metrics) + 3.4, 0.4 * len(methods) + 2.6), layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["RdYlGn_r"]
    worst = max(len(methods), 2)
    shown = np.column_stack([ranks, [board["mean_rank"][m] for m in methods]])
    ax.imshow(shown, cmap=cmap, vmin=1, vmax=worst, aspect="auto")
    for row, method in enumerate(methods):
        for col, metric in enumerate(metrics):
            estimate = scores[method][metric]["estimate"]
            ax.text(col, row, "–" if not np.isfinite(estimate) else f"{estimate:.3g}", ha="center", va="center",
                    fontsize=7, color=_ink(ranks[row, col], worst))
            if scores[method][metric]["rank"] == 1:
                ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
        ax.text(len(metrics), row, f"{board['mean_rank'][method]:.1f}", ha="center", va="center", fontsize=8,
                fontweight="bold", color=_ink(board["mean_rank"][method], worst))
    arrows = ["↑" if scores[methods[0]][k]["higher_is_better"] else "↓" for k in metrics] if methods else []
    ax.set_xticks(range(len(metrics) + 1))
    ax.set_xticklabels([f"{k} {a}" for k, a in zip(metrics, arrows)] + ["mean rank"], rotation=45, ha="right",
                       fontsize=8)
    ax.set_yticks(range(len(methods)))
    ax.set_yticklabels(methods, fontsize=8)
    families = [scores[methods[0]][k]["family"] for k in metrics] if methods else []
    for start, stop, family in _runs(families):
        if start:
            ax.axvline(start - 0.5, color="white", linewidth=3)
        ax.text((start + stop - 1) / 2, -0.7, family, ha="center", va="bottom", fontsize=8, fontweight="bold")
    ax.axvline(len(metrics) - 0.5, color="black", linewidth=1.5)
    ax.set_ylim(len(methods) - 0.5, -1.3)
    ax.set_title("Explainer leaderboard: colour = rank among methods (green best), box = best per metric, "
                 "number = mean over images;\n↑ higher is better, ↓ lower is better; rows by mean rank",
                 fontsize=9)
    return fig


def _by_family(metrics: list[str], scores: Mapping, methods: list[str]) -> list[str]:
    """Metrics grouped by family (FAMILY_ORDER, unknown families last), their order kept within a family."""
    if not methods:
        return metrics
    order = {family: i for i, family in enumerate(FAMILY_ORDER)}
    return sorted(metrics, key=lambda k: order.get(scores[methods[0]][k]["family"], len(order)))


def _runs(labels: list[str]) -> list[tuple[int, int, str]]:
    """(start, stop, label) of each run of equal consecutive labels."""
    runs: list[tuple[int, int, str]] = []
    for i, label in enumerate(labels):
        if runs and runs[-1][2] == label:
            runs[-1] = (runs[-1][0], i + 1, label)
        else:
            runs.append((i, i + 1, label))
    return runs


def _ink(rank: float, worst: int) -> str:
    """White on the dark ends of the colour map (best and worst ranks), black in its light middle."""
    if not np.isfinite(rank):
        return "black"
    position = (rank - 1) / max(worst - 1, 1)
    return "white" if position < 0.15 or position > 0.85 else "black"


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
        axes[row, 0].set_title(wrap_caption(title, 26), fontsize=7)
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
