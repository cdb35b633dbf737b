"""Figures of the post-fit explanations, from plain arrays (no model, no MLflow).

Figures are built without pyplot, so no GUI backend is ever needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from heatlens.explain import cam, stats
from heatlens.plots.common import (
    HEATMAP_CMAP,
    SIGNED_CMAP,
    as_display_image,
    ellipsise,
    ellipsise_lines,
    heatmap_colorbar,
    panel_size,
    symmetric_limit,
)

ORDER_STYLES = {"morf": ("MoRF", "tab:red"), "lerf": ("LeRF", "tab:blue"), "random": ("random", "tab:gray")}
DRAWN_SIDE = 256  # px: the four-colour map is computed at about this size over the mean image
CHAR_WIDTH_8PT = 0.072  # inches per character of an 8 pt title, to fit titles to their panel
CLASS_COLOURS = ("tab:red", "tab:orange", "tab:green", "tab:purple", "tab:blue", "tab:brown", "tab:pink",
                 "tab:olive", "tab:cyan", "tab:gray")


def _grey(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(H, W), (1, H, W) or (3, H, W) in [0, 1] -> something imshow draws, and its colormap."""
    return as_display_image(image)


def _overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float) -> np.ndarray:
    """RGB blend (H, W, 3): (1 - alpha) * image + alpha * jet(heatmap), as the Grad-CAM papers show it."""
    base, _ = _grey(image)
    rgb = np.repeat(base[..., None], 3, axis=-1) if base.ndim == 2 else base
    colour = colormaps[HEATMAP_CMAP](np.clip(heatmap, 0, 1))[..., :3]
    return np.clip((1 - alpha) * rgb + alpha * colour, 0, 1)


def gradcam_overlays(images: np.ndarray, heatmaps: np.ndarray, titles: Sequence[str],
                     alphas: Sequence[float] = (0.3, 0.5, 0.7), suptitle: str = "",
                     explained: Sequence[str] | None = None, title_width: int | None = None) -> Figure:
    """One row per image: the image, then the heatmap blended in at each `alphas` level, one colour bar.

    images (N, C, H, W) or (N, H, W) in [0, 1]; heatmaps (N, H, W) in [0, 1] at image resolution.
    `explained[i]`: the class whose map row i shows (written under the title). Title lines longer
    than `title_width` characters (default: what fits the panel) are shortened with an ellipsis;
    panels keep the images' aspect ratio.
    """
    rows = max(len(images), 1)
    cols = 1 + len(alphas)
    width, height = panel_size(np.shape(images)[1:], 1.9)
    title_width = title_width or int(width / CHAR_WIDTH_8PT)
    title_lines = max([str(t).count("\n") + 1 for t in titles] or [1]) + (explained is not None)
    fig = Figure(figsize=(width * cols + 1.0, (height + 0.17 * title_lines + 0.1) * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for row, (image, heatmap, title) in enumerate(zip(images, heatmaps, titles)):
        base, cmap = _grey(image)
        axes[row, 0].imshow(base, cmap=cmap, vmin=0, vmax=1)
        label = ellipsise_lines(title, title_width)
        if explained is not None:
            label += f"\nmap of {ellipsise(explained[row], title_width - 7)}"
        axes[row, 0].set_title(label, fontsize=8)
        for col, alpha in enumerate(alphas, start=1):
            axes[row, col].imshow(_overlay(image, heatmap, alpha))
            if row == 0:
                axes[row, col].set_title(f"blend {alpha:.1f}", fontsize=8)
    if not len(images):
        axes[0, 0].text(0.5, 0.5, "no image", ha="center", va="center")
    for ax in axes.flat:
        ax.axis("off")
    if len(images):
        heatmap_colorbar(fig, axes[:, 1:], label="Grad-CAM, scaled per image",
                         shrink=min(0.6, 0.3 + 0.1 * rows), aspect=15 + 3 * rows)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def average_heatmap_grid(mean_grid: np.ndarray, class_names: Sequence[str]) -> Figure:
    """C x C average heatmaps: row = true class of the images, column = class the map explains.

    Raw Grad-CAM is signed: one diverging scale centred on zero (white) for every cell, so rows and
    columns compare directly and evidence for (red) and against (blue) a class read apart.
    """
    num = len(class_names)
    limit = symmetric_limit(mean_grid)
    fig = Figure(figsize=(2.1 * num + 1, 2.1 * num), layout="constrained")
    axes = fig.subplots(num, num, squeeze=False)
    image = None
    for t in range(num):
        for c in range(num):
            ax = axes[t, c]
            image = ax.imshow(mean_grid[t, c], cmap=SIGNED_CMAP, vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
            if t == 0:
                ax.set_title(f"explains {ellipsise(class_names[c], 18)}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"true {ellipsise(class_names[t], 18)}", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.6, label="raw Grad-CAM (0 = white)")
    fig.suptitle("Average Grad-CAM per (true class, explained class)")
    return fig


def heatmap_boxplots(box_summaries: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Box plots (min, q1, median, q3, max) of raw heatmap values, one panel per true class."""
    num = len(class_names)
    fig = Figure(figsize=(2.8 * num, 3.4), layout="constrained")
    axes = fig.subplots(1, num, squeeze=False, sharey=True)
    for t in range(num):
        stats = [
            {"label": class_names[c], "whislo": s[0], "q1": s[1], "med": s[2], "q3": s[3], "whishi": s[4]}
            for c, s in enumerate(box_summaries[t]) if np.isfinite(s).all()
        ]
        ax = axes[0, t]
        if stats:
            ax.bxp(stats, showfliers=False)
        ax.set_title(f"true {class_names[t]}", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.axhline(0.0, color="black", linewidth=0.5)
    axes[0, 0].set_ylabel("raw Grad-CAM value")
    fig.suptitle("Heatmap values per explained class")
    return fig


def four_colour_map(composite: np.ndarray, class_names: Sequence[str], mean_image: np.ndarray | None = None,
                    mean_maps: np.ndarray | None = None, min_relevance: float = 0.5) -> Figure:
    """Each pixel coloured by the class whose (normalised) average heatmap is largest there.

    With `mean_image` ((H, W) or (C, H, W) in [0, 1] or uint8: the average explained X-ray) the colours
    are drawn over it. With `mean_maps` ((C, h, w): each class's average raw map over its own images,
    the maps `composite` was computed from) the composite is recomputed at image resolution and a
    pixel is coloured only where the winning class's ReLU'd average reaches `min_relevance` of its peak.
    """
    colours = CLASS_COLOURS[: len(class_names)]
    shape = None if mean_image is None else as_display_image(mean_image)[0].shape[:2]
    shown = None
    if mean_maps is not None:
        maps = torch.from_numpy(np.nan_to_num(np.asarray(mean_maps, dtype=np.float32)))
        if shape is not None:
            # Finer than a thumbnail-sized mean image, so region borders are smooth rather than blocky.
            scale = max(1, DRAWN_SIDE // max(shape))
            maps = cam.upsample(maps[None], (shape[0] * scale, shape[1] * scale))[0]
        composite = stats.four_colour_composite(maps)
        positive = cam.relu(maps)
        relative = (positive / positive.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)).numpy()
        shown = np.take_along_axis(relative, composite[None], axis=0)[0] >= min_relevance
    fig = Figure(figsize=(4.4, 4.9), layout="constrained")
    ax = fig.subplots()
    extent = None
    if mean_image is not None:
        base, cmap = as_display_image(mean_image)
        ax.imshow(base, cmap=cmap, vmin=0, vmax=1, interpolation="bilinear")
        extent = (-0.5, shape[1] - 0.5, shape[0] - 0.5, -0.5)
    rgba = ListedColormap(colours)(np.asarray(composite))
    rgba[..., 3] = 0.45 if mean_image is not None else 1.0
    if shown is not None:
        rgba[..., 3] = np.where(shown, 0.5 if mean_image is not None else 1.0, 0.0)
    ax.imshow(rgba, interpolation="nearest", extent=extent)
    ax.axis("off")
    ax.legend(handles=[Patch(color=c, label=ellipsise(n, 24)) for c, n in zip(colours, class_names)],
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8)
    title = "Strongest class per pixel"
    if shown is not None:
        title += f"\n(where its average Grad-CAM is \u2265 {min_relevance:.0%} of its peak)"
    ax.set_title(title, fontsize=10)
    return fig


def _variance_rows(variance_ratio: np.ndarray, max_rows: int) -> list[list[str]]:
    """Table rows (component, variance, cumulative); a long table keeps its head and its last row,
    whose cumulative share is the one that reached the threshold."""
    cumulative = np.cumsum(variance_ratio)
    rows = [[str(k + 1), f"{r:.3f}", f"{c:.3f}"] for k, (r, c) in enumerate(zip(variance_ratio, cumulative))]
    if len(rows) > max_rows:
        rows = rows[: max_rows - 2] + [["\u22ee", "", ""], rows[-1]]
    return rows


def eigen_heatmaps_figure(class_name: str, mean: np.ndarray, components: np.ndarray,
                          variance_ratio: np.ndarray, example: np.ndarray, reconstruction: np.ndarray,
                          max_components: int = 24, variance: float | None = None,
                          max_table_rows: int = 18) -> Figure:
    """Average map, the eigen-heatmaps (all kept ones up to `max_components`; the title says "first k
    of n" otherwise), one heatmap with its reconstruction, and the variance table down to the last
    kept component (whose cumulative share reaches `variance`, the threshold, when given).

    Raw maps (average, heatmap, reconstruction) share one diverging scale centred on zero; the
    unit-norm components share another.
    """
    total = len(components)
    shown = components[:max_components]
    cols = int(min(max(len(shown), 3), 8))
    component_rows = int(np.ceil(len(shown) / cols)) if len(shown) else 0
    fig = Figure(figsize=(1.55 * cols + 2.9, 1.75 * (1 + component_rows) + 0.9), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.55 * cols, 2.9])
    top, bottom = left.subfigures(2, 1, height_ratios=[1, max(component_rows, 1)])
    raw_axes = top.subplots(1, 3)
    raw_limit = symmetric_limit(np.stack([mean, example, reconstruction]))
    raw_image = None
    for ax, (image, title) in zip(raw_axes, [(mean, "average"), (example, "a heatmap"),
                                             (reconstruction, f"reconstructed ({total} comp.)")]):
        raw_image = ax.imshow(image, cmap=SIGNED_CMAP, vmin=-raw_limit, vmax=raw_limit)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    top.colorbar(raw_image, ax=raw_axes, shrink=0.8, label="raw Grad-CAM")
    component_axes = bottom.subplots(max(component_rows, 1), cols, squeeze=False)
    component_limit = symmetric_limit(shown) if len(shown) else 1.0
    for k, ax in enumerate(component_axes.flat):
        ax.axis("off")
        if k < len(shown):
            ax.imshow(shown[k], cmap=SIGNED_CMAP, vmin=-component_limit, vmax=component_limit)
            ax.set_title(f"eigen {k + 1} ({variance_ratio[k]:.0%})", fontsize=8)
    table_ax = right.subplots()
    table_ax.axis("off")
    table = table_ax.table(cellText=_variance_rows(np.asarray(variance_ratio), max_table_rows),
                           colLabels=["comp.", "variance", "cumulative"], loc="upper center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    kept = f"{total} components keep {float(np.sum(variance_ratio)):.1%} of the variance"
    if variance is not None:
        kept += f"\n(threshold {variance:.0%})"
    table_ax.set_title(kept, fontsize=8)
    which = f"first {len(shown)} of {total}" if len(shown) < total else f"all {total}"
    fig.suptitle(f"Eigen-heatmaps: {ellipsise(class_name, 32)} ({which} components)")
    return fig


def draw_perturbation_curves(ax: Axes, curves: Mapping[str, np.ndarray], aopc: Mapping[str, float]) -> None:
    """Mean explained-class score (with a standard-error band) after k perturbation steps, per order."""
    for order, values in curves.items():
        label, colour = ORDER_STYLES.get(order, (order, None))
        valid = values[~np.isnan(values).any(axis=1)] if len(values) else values
        if not len(valid):
            continue
        steps = np.arange(valid.shape[1])
        mean = valid.mean(axis=0)
        sem = valid.std(axis=0) / np.sqrt(len(valid))
        ax.plot(steps, mean, color=colour, label=f"{label} (AOPC {aopc.get(order, np.nan):.3f})")
        ax.fill_between(steps, mean - sem, mean + sem, color=colour, alpha=0.2)
    ax.set_xlabel("perturbation steps (regions replaced)")
    ax.set_ylabel("score of the explained class")
    ax.legend(fontsize=8)


def perturbation_curves_figure(curves: Mapping[str, np.ndarray], aopc: Mapping[str, float]) -> Figure:
    """Mean explained-class score (with a standard-error band) after k perturbation steps, per order."""
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    draw_perturbation_curves(ax, curves, aopc)
    ax.set_title("Region perturbation")
    return fig


def tsne_side_by_side(raw_2d: np.ndarray, embedding_2d: np.ndarray, labels: np.ndarray,
                      class_names: Sequence[str], subtitles: Sequence[str] = ("", "")) -> Figure:
    """t-SNE of raw pixels beside t-SNE of the learned embeddings, coloured by true class."""
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, points, title, subtitle in zip(axes, (raw_2d, embedding_2d), ("raw pixels", "learned embedding"),
                                          subtitles):
        for c, name in enumerate(class_names):
            chosen = labels == c
            ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=CLASS_COLOURS[c % len(CLASS_COLOURS)],
                       label=name, alpha=0.8)
        ax.set_title(f"t-SNE of {title}" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].legend(fontsize=8, loc="best")
    return fig


def attribution_grid(images: np.ndarray, attributions: Mapping[str, np.ndarray], titles: Sequence[str]) -> Figure:
    """One row per image: the image, then one column per attribution method (maps (N, H, W))."""
    methods = list(attributions)
    rows, cols = max(len(images), 1), 1 + len(methods)
    width, height = panel_size(np.shape(images)[1:], 2.0)
    fig = Figure(figsize=(width * cols, (height + 0.35) * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for row, (image, title) in enumerate(zip(images, titles)):
        base, cmap = _grey(image)
        axes[row, 0].imshow(base, cmap=cmap, vmin=0, vmax=1)
        axes[row, 0].set_title(ellipsise_lines(title, 30), fontsize=8)
        for col, method in enumerate(methods, start=1):
            axes[row, col].imshow(attributions[method][row], cmap="inferno")
            if row == 0:
                axes[row, col].set_title(method, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    return fig


def sanity_figure(scores: Mapping[str, float]) -> Figure:
    """Rank correlation with the trained model's heatmaps as layers are randomised from the top down."""
    names = list(scores)
    fig = Figure(figsize=(max(4.0, 0.45 * len(names) + 2), 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(range(len(names)), [scores[n] for n in names], marker="o")
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("Spearman rank correlation")
    ax.set_xlabel("randomised down to layer")
    ax.set_ylim(-0.2, 1.05)
    ax.set_title("Cascading parameter randomisation")
    return fig
