"""`figures/aopc/curves.png` and the summary's panel: region-perturbation curves, overall and per class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from heatlens.plots.common import class_colours, ellipsise

# Orders, not classes: black, grey and dotted line styles, so no order is mistaken for a class colour.
ORDER_STYLES = {"morf": ("MoRF", "black", "-"), "lerf": ("LeRF", "dimgray", "--"), "random": ("random", "gray", ":")}
AOPC_NOTE = ("MoRF: most relevant regions replaced first; a faithful map makes the score fall fast (higher AOPC "
             "is better).\nLeRF: least relevant first; the score should hold (lower AOPC is better). AOPC: the mean "
             "drop below the unperturbed score.")


def _valid(values: np.ndarray) -> np.ndarray:
    """The scored curves: rows without NaN (images left out, e.g. misclassified ones, are NaN)."""
    values = np.asarray(values, dtype=np.float64)
    return values[~np.isnan(values).any(axis=1)] if values.ndim == 2 and len(values) else np.empty((0, 0))


def _mean_and_band(ax: Axes, values: np.ndarray, label: str, **style) -> None:
    """The mean curve and a band of +-1 standard error of that mean."""
    steps = np.arange(values.shape[1])
    mean = values.mean(axis=0)
    sem = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.zeros_like(mean)
    ax.plot(steps, mean, label=label, **style)
    ax.fill_between(steps, mean - sem, mean + sem, color=style.get("color"), alpha=0.18, lw=0)


def draw_perturbation_curves(ax: Axes, curves: Mapping[str, np.ndarray], aopc: Mapping[str, float]) -> None:
    """Mean explained-class score (with a standard-error band) after k perturbation steps, per order;
    the legend names the orders, their AOPC and the number of images."""
    count = 0
    for order, values in curves.items():
        label, colour, style = ORDER_STYLES.get(order, (order, None, "-"))
        valid = _valid(values)
        if not len(valid):
            continue
        count = max(count, len(valid))
        _mean_and_band(ax, valid, f"{label} (AOPC {aopc.get(order, np.nan):.3f})", color=colour, ls=style, lw=1.8)
    ax.set_xlabel("perturbation steps (regions replaced)")
    ax.set_ylabel("score of the explained class")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=f"mean of {count} images, band \u00b11 s.e.", title_fontsize=7)


def draw_class_curves(ax: Axes, curves: np.ndarray, groups: np.ndarray, class_names: Sequence[str],
                      order: str = "morf") -> None:
    """The mean `order` curve of each true class (its colour), with its AOPC and image count."""
    colours = class_colours(class_names)
    per_image = _aopc_rows(curves)
    for c, name in enumerate(class_names):
        mine = np.asarray(groups) == c
        valid = _valid(np.asarray(curves)[mine])
        if not len(valid):
            continue
        value = float(np.nanmean(per_image[mine]))
        _mean_and_band(ax, valid, f"{ellipsise(name, 20)} (n={len(valid)}, AOPC {value:.3f})",
                       color=colours[name], lw=1.6)
    ax.set_xlabel("perturbation steps (regions replaced)")
    ax.set_ylabel("score of the explained class")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title=f"{ORDER_STYLES.get(order, (order,))[0]} by true class", title_fontsize=7)


def _aopc_rows(curves: np.ndarray) -> np.ndarray:
    """AOPC of each curve, (f(x0) - f(xk)) summed over k >= 1 / (L + 1) as heatlens.explain.perturbation."""
    curves = np.asarray(curves, dtype=np.float64)
    return (curves[:, :1] - curves[:, 1:]).sum(axis=1) / curves.shape[1]


def perturbation_curves_figure(curves: Mapping[str, np.ndarray], aopc: Mapping[str, float],
                               map_name: str | None = None, groups: np.ndarray | None = None,
                               class_names: Sequence[str] | None = None) -> Figure:
    """Mean explained-class score (with a standard-error band) after k perturbation steps, per order;
    with `groups` (each curve's true class, or finding) and `class_names`, a second panel of the MoRF
    curves per class, so a class whose AOPC the mean hides shows. `map_name` (the explainer) joins the title."""
    per_class = groups is not None and class_names is not None and "morf" in curves and len(curves["morf"])
    fig = Figure(figsize=(10.5 if per_class else 5.5, 4.4), layout="constrained")
    axes = fig.subplots(1, 2 if per_class else 1, squeeze=False, sharey=True)[0]
    draw_perturbation_curves(axes[0], curves, aopc)
    axes[0].set_title("all explained images", fontsize=10)
    if per_class:
        draw_class_curves(axes[1], curves["morf"], groups, class_names)
        axes[1].set_title("MoRF per true class", fontsize=10)
    fig.suptitle("Region perturbation" + (f" by {map_name}" if map_name else ""))
    fig.supxlabel(AOPC_NOTE, fontsize=8, color="dimgray")
    return fig
