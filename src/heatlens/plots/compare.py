"""Figures of the comparison report: arrays in, matplotlib Figure out (Agg, no MLflow)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

# Figure objects need no pyplot backend: safe in servers, workers and notebooks alike.
from matplotlib.figure import Figure

from heatlens.plots.common import class_colours, draw_overlay, ellipsise, ellipsise_lines, heatmap_colorbar

METRIC_TITLES = {"aopc_morf": "AOPC MoRF", "aopc_lerf": "AOPC LeRF", "aopc_random": "AOPC random order"}
ORDER_TITLES = {"morf": "MoRF: most relevant first\n(a faster fall = a more faithful map)",
                "lerf": "LeRF: least relevant first\n(a slower fall = a more faithful map)", "random": "random order\n(reference)"}


def perturbation_curves_figure(curves: Mapping[str, Mapping[str, np.ndarray]]) -> Figure:
    """One panel per perturbation order; each run's mean curve (score vs step) overlaid."""
    orders = [o for o in ORDER_TITLES if o in curves] + [o for o in curves if o not in ORDER_TITLES]
    fig = Figure(figsize=(4.2 * len(orders), 3.6), layout="constrained")
    axes = fig.subplots(1, len(orders), squeeze=False)[0]
    for ax, order in zip(axes, orders):
        for run_label, curve in curves[order].items():
            ax.plot(np.arange(len(curve)), curve, marker=".", label=run_label)
        ax.set_title(ORDER_TITLES.get(order, order))
        ax.set_xlabel("perturbation step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("score of the explained class")
    # Below the panels: inside one, the legend hides the curves it names.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, [ellipsise(label, 48) for label in labels], loc="outside lower center",
               ncol=min(len(labels), 3), fontsize="small")
    return fig


def side_by_side_figure(
    maps: np.ndarray, run_labels: Sequence[str], image_titles: Sequence[str], cell_titles: Sequence[Sequence[str]],
    images: np.ndarray | None = None,
) -> Figure:
    """Grid of heatmaps in [0, 1]: maps (runs, images, H, W); one row per run, one column per image.

    With `images` ((images, t, t[, c]) uint8 or float in [0, 1]) each map is drawn over its image,
    fading out where relevance is low; one colour bar serves every panel. A map with no positive
    value says so instead of showing a uniform square.
    """
    n_runs, n_images = maps.shape[:2]
    fig = Figure(figsize=(1.75 * n_images + 2.4, 1.95 * n_runs + 0.9), layout="constrained")
    axes = fig.subplots(n_runs, n_images, squeeze=False)
    for r in range(n_runs):
        for i in range(n_images):
            ax = axes[r, i]
            draw_overlay(ax, None if images is None else images[i], maps[r, i])
            ax.set_xlabel(ellipsise(cell_titles[r][i], 22), fontsize="x-small")
            if r == 0:
                ax.set_title(ellipsise_lines(image_titles[i], 22), fontsize="x-small")
            if i == 0:
                ax.set_ylabel(ellipsise_lines(_wrap_label(run_labels[r]), 22), fontsize="small")
    heatmap_colorbar(fig, axes, label="true-class Grad-CAM,\nscaled per image", shrink=min(0.9, 0.6 + 0.1 * n_runs))
    return fig


def _wrap_label(label: str) -> str:
    """'name (abc123)' on two lines: run names are long, the id prefix tells runs apart."""
    return label.replace(" (", "\n(", 1) if len(label) > 22 else label


def correlation_figure(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """One run x run Pearson-correlation matrix of average heatmaps per class; runs are numbered,
    the key below the panels names them once."""
    n_runs = len(next(iter(tables.values())))
    colours = class_colours(list(tables))  # the tables come in the runs' class order
    side = 0.5 * n_runs + 1.2
    fig = Figure(figsize=(side * len(tables) + 1.2, side + 0.5 + 0.18 * n_runs), layout="constrained")
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    image = None
    for ax, (class_name, table) in zip(axes, tables.items()):
        image = ax.imshow(table.to_numpy(), cmap="coolwarm", vmin=-1.0, vmax=1.0)
        ticks = np.arange(len(table))
        ax.set_xticks(ticks, [str(i + 1) for i in ticks])
        ax.set_yticks(ticks, [str(i + 1) for i in ticks])
        if n_runs <= 8:
            for (row, col), value in np.ndenumerate(table.to_numpy()):
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize="small")
        ax.set_title(ellipsise(class_name, 24), fontsize="medium", color=colours.get(class_name, "black"))
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="Pearson r")
    labels = next(iter(tables.values())).index
    key = "\n".join(f"{i + 1}: {label}" for i, label in enumerate(labels))
    fig.supxlabel(key, fontsize="small", ha="left", x=0.02, multialignment="left")
    return fig


def interval_figure(summary: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """Point estimate and bootstrap interval per run for each metric (columns <m>, <m>_low, <m>_high)."""
    metrics = [m for m in metrics if m in summary and summary[m].notna().any()]
    fig = Figure(figsize=(3.0 * max(len(metrics), 1) + 2.5, 0.4 * len(summary) + 1.3), layout="constrained")
    axes = fig.subplots(1, max(len(metrics), 1), squeeze=False, sharey=True)[0]
    positions = np.arange(len(summary))
    for ax, metric in zip(axes, metrics):
        estimate = summary[metric].to_numpy(dtype=float)
        low = summary.get(f"{metric}_low", summary[metric]).to_numpy(dtype=float)
        high = summary.get(f"{metric}_high", summary[metric]).to_numpy(dtype=float)
        error = np.nan_to_num(np.stack([estimate - low, high - estimate]), nan=0.0)
        ax.errorbar(estimate, positions, xerr=error, fmt="o", capsize=3)
        ax.set_title(METRIC_TITLES.get(metric, metric))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, [ellipsise(label, 40) for label in summary["run"]], fontsize="small")
    axes[0].invert_yaxis()
    return fig
