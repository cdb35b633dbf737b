"""Reliability diagrams (with bin counts), risk-coverage curves and operating points. Built without pyplot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from heatlens.clinical import ReliabilityBins, RiskCoverage
from heatlens.plots.common import class_colours, ellipsise
from heatlens.plots.training import draw_confusion_matrix

# One series per set of probabilities: (label, bins, colour); black and grey, apart from the class colours.
Series = tuple[str, ReliabilityBins, str]
SERIES_COLOURS = ("black", "#999999")


def draw_reliability(ax: Axes, counts_ax: Axes, series: Sequence[Series], title: str) -> None:
    """Observed frequency against mean confidence per bin (the diagonal is perfect calibration);
    below, the number of test images in each bin of the first series."""
    ax.plot([0, 1], [0, 1], color="gray", lw=1, ls="--", label="perfectly calibrated")
    for label, bins, colour in series:
        filled = bins.count > 0
        ax.plot(bins.confidence[filled], bins.frequency[filled], "o-", color=colour, ms=4, lw=1.4, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed frequency")
    ax.set_title(ellipsise(title, 30), fontsize=10)
    ax.tick_params(labelbottom=False)
    ax.grid(alpha=0.3)
    _, first, colour = series[0]
    widths = first.upper - first.lower
    counts_ax.bar(first.lower, first.count, width=widths, align="edge", color=colour, alpha=0.35, edgecolor=colour)
    for left, width, count in zip(first.lower, widths, first.count):
        if count:
            counts_ax.text(left + width / 2, count, str(int(count)), ha="center", va="bottom", fontsize=6)
    counts_ax.set_xlim(0, 1)
    counts_ax.set_ylim(0, max(first.count.max(), 1) * 1.35)
    counts_ax.set_xlabel("predicted probability")
    counts_ax.set_ylabel("images" if len(series) == 1 else f"images\n({series[0][0]})", fontsize=7)
    counts_ax.tick_params(labelsize=7)


def reliability_figure(panels: Mapping[str, Sequence[Series]], title: str = "Reliability on the test set",
                       class_names: Sequence[str] | None = None) -> Figure:
    """One reliability diagram per panel (e.g. "top-1 (all classes)" then each class one-vs-rest), at
    most 4 per row, each with its bin counts below; a panel named after one of `class_names` has its
    title in that class's colour."""
    colours = class_colours(class_names or [])
    names = list(panels)
    rows = -(-len(names) // 4)  # at most 4 a row, the rows filled evenly (5 panels: 3 + 2, not 4 + 1)
    columns = -(-len(names) // rows)
    fig = Figure(figsize=(3.3 * columns, 4.0 * rows + 0.4), layout="constrained")
    fig.suptitle(title, fontsize=12)
    grid = fig.add_gridspec(2 * rows, columns, height_ratios=[3, 1] * rows)
    for k, name in enumerate(names):
        row, col = divmod(k, columns)
        ax = fig.add_subplot(grid[2 * row, col])
        counts_ax = fig.add_subplot(grid[2 * row + 1, col], sharex=ax)
        draw_reliability(ax, counts_ax, panels[name], name)
        if name in colours:
            ax.title.set_color(colours[name])
        if k == 0:
            ax.legend(fontsize=7, loc="upper left")
    return fig


def risk_coverage_figure(curves: Mapping[str, RiskCoverage]) -> Figure:
    """Error rate among the most confident fraction of test images, per set of probabilities."""
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for label, curve in curves.items():
        ax.plot(curve.coverage, curve.risk, lw=1.6, label=f"{label} (AURC {curve.aurc:.3f})")
    full = next(iter(curves.values())).risk[-1]
    ax.axhline(full, color="gray", lw=1, ls="--", label=f"no abstention: error {full:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("coverage (fraction of test images answered, most confident first)")
    ax.set_ylabel("error rate among answered images")
    ax.set_title("Risk-coverage: what abstaining buys")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig



def operating_point_figure(counts: np.ndarray, class_name: str, threshold: float, rule: str,
                           sensitivity: Mapping[str, float], specificity: Mapping[str, float],
                           data: str = "test") -> Figure:
    """The 2 x 2 matrix of `data` (the set `counts` were counted on) at a threshold chosen on val by
    `rule` (its description, e.g. "no missed case on val"), with sensitivity and specificity
    ({"estimate", "low", "high"}: the interval) on that same set."""
    counts = np.asarray(counts)
    rule = rule.removesuffix(" on val")
    title = (f"{ellipsise(class_name, 24)}: p \u2265 {threshold:.3g}, threshold chosen on val ({rule})\n"
             f"{data} set, {int(counts.sum())} images: sensitivity {sensitivity['estimate']:.2f} "
             f"[{sensitivity['low']:.2f}, {sensitivity['high']:.2f}], specificity {specificity['estimate']:.2f} "
             f"[{specificity['low']:.2f}, {specificity['high']:.2f}]")
    fig = Figure(figsize=(5.6, 4.6), layout="constrained")
    ax = fig.subplots()
    image = draw_confusion_matrix(ax, counts, [f"not {class_name}", class_name], "", xlabel=
                                  f"predicted at p \u2265 {threshold:.3g}", ylabel=f"true ({data} set)")
    fig.suptitle(title, fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    return fig
