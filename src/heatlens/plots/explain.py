"""Figures of the post-fit explanations, from plain arrays (no model, no MLflow).

Figures are built without pyplot, so no GUI backend is ever needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

HEATMAP_CMAP = "jet"
ORDER_STYLES = {"morf": ("MoRF", "tab:red"), "lerf": ("LeRF", "tab:blue"), "random": ("random", "tab:gray")}
CLASS_COLOURS = ("tab:red", "tab:orange", "tab:green", "tab:purple", "tab:blue", "tab:brown", "tab:pink",
                 "tab:olive", "tab:cyan", "tab:gray")


def _grey(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(H, W), (1, H, W) or (3, H, W) in [0, 1] -> something imshow draws, and its colormap."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 3:
        return np.clip(np.moveaxis(image, 0, -1), 0, 1), None
    return np.clip(image, 0, 1), "gray"


def _overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float) -> np.ndarray:
    """RGB blend (H, W, 3): (1 - alpha) * image + alpha * jet(heatmap), as the Grad-CAM papers show it."""
    base, _ = _grey(image)
    rgb = np.repeat(base[..., None], 3, axis=-1) if base.ndim == 2 else base
    colour = colormaps[HEATMAP_CMAP](np.clip(heatmap, 0, 1))[..., :3]
    # float32 denormalised images overshoot 1 by rounding; imshow warns on every such image
    return np.clip((1 - alpha) * rgb + alpha * colour, 0, 1)


def gradcam_overlays(images: np.ndarray, heatmaps: np.ndarray, titles: Sequence[str],
                     alphas: Sequence[float] = (0.3, 0.5, 0.7), suptitle: str = "") -> Figure:
    """One row per image: the image, then the heatmap blended in at each `alphas` level.

    images (N, C, H, W) or (N, H, W) in [0, 1]; heatmaps (N, H, W) in [0, 1] at image resolution.
    """
    rows = max(len(images), 1)
    cols = 1 + len(alphas)
    fig = Figure(figsize=(2.2 * cols, 2.3 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for row, (image, heatmap, title) in enumerate(zip(images, heatmaps, titles)):
        base, cmap = _grey(image)
        axes[row, 0].imshow(base, cmap=cmap, vmin=0, vmax=1)
        axes[row, 0].set_title(title, fontsize=8)
        for col, alpha in enumerate(alphas, start=1):
            axes[row, col].imshow(_overlay(image, heatmap, alpha))
            if row == 0:
                axes[row, col].set_title(f"blend {alpha:.1f}", fontsize=8)
    if not len(images):
        axes[0, 0].text(0.5, 0.5, "no image", ha="center", va="center")
    for ax in axes.flat:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def average_heatmap_grid(mean_grid: np.ndarray, class_names: Sequence[str]) -> Figure:
    """C x C average heatmaps: row = true class of the images, column = class the map explains.

    Every cell shares one colour scale, so rows and columns compare directly.
    """
    num = len(class_names)
    finite = mean_grid[np.isfinite(mean_grid)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    fig = Figure(figsize=(2.1 * num + 1, 2.1 * num), layout="constrained")
    axes = fig.subplots(num, num, squeeze=False)
    image = None
    for t in range(num):
        for c in range(num):
            ax = axes[t, c]
            image = ax.imshow(mean_grid[t, c], cmap=HEATMAP_CMAP, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if t == 0:
                ax.set_title(f"explains {class_names[c]}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"true {class_names[t]}", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.6, label="raw Grad-CAM")
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


def four_colour_map(composite: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Each pixel coloured by the class whose (normalised) average heatmap is largest there."""
    colours = CLASS_COLOURS[: len(class_names)]
    fig = Figure(figsize=(4.2, 4.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(composite, cmap=ListedColormap(colours), vmin=-0.5, vmax=len(class_names) - 0.5,
              interpolation="nearest")
    ax.axis("off")
    ax.legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, class_names)],
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8)
    ax.set_title("Strongest class per pixel")
    return fig


def eigen_heatmaps_figure(class_name: str, mean: np.ndarray, components: np.ndarray,
                          variance_ratio: np.ndarray, example: np.ndarray, reconstruction: np.ndarray,
                          max_components: int = 6) -> Figure:
    """Average map, the first eigen-heatmaps, a variance table and one heatmap with its reconstruction."""
    shown = components[:max_components]
    cols = max(len(shown) + 1, 3)
    fig = Figure(figsize=(2.1 * cols, 6.6), layout="constrained")
    grid = fig.add_gridspec(3, cols, height_ratios=[1, 1, 0.8])
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(mean, cmap=HEATMAP_CMAP)
    ax.set_title("average", fontsize=8)
    ax.axis("off")
    for k, component in enumerate(shown, start=1):
        ax = fig.add_subplot(grid[0, k])
        limit = float(np.abs(component).max()) or 1.0
        ax.imshow(component, cmap="coolwarm", vmin=-limit, vmax=limit)
        ax.set_title(f"eigen {k} ({variance_ratio[k - 1]:.0%})", fontsize=8)
        ax.axis("off")
    for col, (image, title) in enumerate([(example, "a heatmap"),
                                          (reconstruction, f"reconstructed ({len(components)} comp.)")]):
        ax = fig.add_subplot(grid[1, col])
        ax.imshow(image, cmap=HEATMAP_CMAP)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    table_ax = fig.add_subplot(grid[2, :])
    table_ax.axis("off")
    cumulative = np.cumsum(variance_ratio)
    rows = [[str(k + 1), f"{r:.3f}", f"{c:.3f}"] for k, (r, c) in enumerate(zip(variance_ratio, cumulative))]
    table = table_ax.table(cellText=rows[:max_components], colLabels=["component", "variance", "cumulative"],
                           loc="center")
    table.scale(1, 1.1)
    fig.suptitle(f"Eigen-heatmaps: {class_name} ({len(components)} components)")
    return fig


def perturbation_curves_figure(curves: Mapping[str, np.ndarray], aopc: Mapping[str, float]) -> Figure:
    """Mean explained-class score (with a standard-error band) after k perturbation steps, per order."""
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
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
    ax.set_title("Region perturbation")
    ax.legend(fontsize=8)
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
    fig = Figure(figsize=(2.2 * cols, 2.3 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for row, (image, title) in enumerate(zip(images, titles)):
        base, cmap = _grey(image)
        axes[row, 0].imshow(base, cmap=cmap, vmin=0, vmax=1)
        axes[row, 0].set_title(title, fontsize=8)
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
