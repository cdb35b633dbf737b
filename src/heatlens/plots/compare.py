"""Figures of the comparison report: arrays in, matplotlib Figure out (Agg, no MLflow)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

# Figure objects need no pyplot backend: safe in servers, workers and notebooks alike.
from matplotlib.figure import Figure

ORDER_TITLES = {"morf": "MoRF (most relevant first)", "lerf": "LeRF (least relevant first)", "random": "random order"}


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
        ax.set_ylabel("score of the explained class")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    return fig


def side_by_side_figure(
    maps: np.ndarray, run_labels: Sequence[str], image_titles: Sequence[str], cell_titles: Sequence[Sequence[str]]
) -> Figure:
    """Grid of heatmaps in [0, 1]: maps (runs, images, H, W); one row per run, one column per image."""
    n_runs, n_images = maps.shape[:2]
    fig = Figure(figsize=(1.7 * n_images + 1.5, 1.8 * n_runs + 0.6), layout="constrained")
    axes = fig.subplots(n_runs, n_images, squeeze=False)
    for r in range(n_runs):
        for i in range(n_images):
            ax = axes[r, i]
            ax.imshow(maps[r, i], cmap="jet", vmin=0.0, vmax=1.0, interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(cell_titles[r][i], fontsize="x-small")
            if r == 0:
                ax.set_title(image_titles[i], fontsize="x-small")
            if i == 0:
                ax.set_ylabel(run_labels[r], fontsize="small")
    return fig


def correlation_figure(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """One run x run Pearson-correlation matrix of average heatmaps per class."""
    fig = Figure(figsize=(3.6 * len(tables) + 0.8, 3.8), layout="constrained")
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    image = None
    for ax, (class_name, table) in zip(axes, tables.items()):
        image = ax.imshow(table.to_numpy(), cmap="coolwarm", vmin=-1.0, vmax=1.0)
        ticks = np.arange(len(table))
        ax.set_xticks(ticks, [str(i + 1) for i in ticks])
        ax.set_yticks(ticks, [f"{i + 1}: {label}" for i, label in enumerate(table.index)], fontsize="x-small")
        for (row, col), value in np.ndenumerate(table.to_numpy()):
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize="x-small")
        ax.set_title(class_name)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="Pearson r")
    return fig


def interval_figure(summary: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """Point estimate and bootstrap interval per run for each metric (columns <m>, <m>_low, <m>_high)."""
    metrics = [m for m in metrics if m in summary and summary[m].notna().any()]
    fig = Figure(figsize=(4.0 * max(len(metrics), 1), 0.45 * len(summary) + 1.5), layout="constrained")
    axes = fig.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    positions = np.arange(len(summary))
    for ax, metric in zip(axes, metrics):
        estimate = summary[metric].to_numpy(dtype=float)
        low = summary.get(f"{metric}_low", summary[metric]).to_numpy(dtype=float)
        high = summary.get(f"{metric}_high", summary[metric]).to_numpy(dtype=float)
        error = np.nan_to_num(np.stack([estimate - low, high - estimate]), nan=0.0)
        ax.errorbar(estimate, positions, xerr=error, fmt="o", capsize=3)
        ax.set_yticks(positions, summary["run"], fontsize="x-small")
        ax.invert_yaxis()
        ax.set_title(metric)
        ax.grid(axis="x", alpha=0.3)
    return fig
