"""Figures of the post-fit explanations, from plain arrays (no model, no MLflow).

Figures are built without pyplot, so no GUI backend is ever needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from heatlens.explain import cam, stats
from heatlens.plots.common import (
    HEATMAP_CMAP,
    as_display_image,
    class_colour,
    class_colours,
    draw_overlay,
    draw_signed,
    ellipsise,
    ellipsise_lines,
    heatmap_colorbar,
    panel_size,
    symmetric_limit,
    wrap_caption,
)
# The AOPC figure lives in plots.perturbation; the aopc step draws it through this module.
from heatlens.plots.perturbation import perturbation_curves_figure  # noqa: F401

DRAWN_SIDE = 256  # px: the four-colour map is computed at about this size over the mean image
EIGEN_COLUMNS = 6  # eigen-heatmaps per row: every class's figure has the same width
EIGEN_NOTE = ("Each image's map \u2248 the average map plus a weighted sum of the eigen-heatmaps below "
              "(principal components of the class's maps). Red: positive, blue: negative; a component's "
              "sign is arbitrary.")
FOUR_COLOUR_OPACITY = 0.6  # regions over the mean image; the legend shows them blended the same way
CHAR_WIDTH_8PT = 0.072  # inches per character of an 8 pt title, to fit titles to their panel


def _grey(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(H, W), (1, H, W) or (3, H, W) in [0, 1] -> something imshow draws, and its colormap."""
    return as_display_image(image)


def _overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float) -> np.ndarray:
    """RGB blend (H, W, 3): (1 - alpha) * image + alpha * jet(heatmap), as the Grad-CAM papers show it."""
    base, _ = _grey(image)
    rgb = np.repeat(base[..., None], 3, axis=-1) if base.ndim == 2 else base
    colour = colormaps[HEATMAP_CMAP](np.clip(heatmap, 0, 1))[..., :3]
    return np.clip((1 - alpha) * rgb + alpha * colour, 0, 1)


def gradcam_overlays(images: np.ndarray, heatmaps: np.ndarray, titles: Sequence[str], alpha: float = 0.5,
                     suptitle: str = "", explained: Sequence[str] | None = None,
                     title_width: int | None = None) -> Figure:
    """One row per image: the image, its heatmap alone, and the heatmap over the image (opacity `alpha`
    at the map's peak, fading out where relevance is low); one colour bar for both.

    images (N, C, H, W) or (N, H, W) in [0, 1]; heatmaps (N, H, W) in [0, 1] at image resolution.
    `titles[i]` (lines, e.g. the verdict then the image id) and `explained[i]`, the class whose map row i
    shows, form the caption above the row, wrapped to its width (`title_width` characters, default
    what fits), two lines at most per title line. Panels keep the images' aspect ratio.
    """
    rows = max(len(images), 1)
    width, height = panel_size(np.shape(images)[1:], 1.9)
    title_width = title_width or int(3 * width / CHAR_WIDTH_8PT)
    captions = []
    for row, title in enumerate(titles):
        first, *rest = str(title).split("\n")
        if explained is not None:
            first += f" \u00b7 map of {explained[row]}"
        captions.append(wrap_caption("\n".join([first, *rest]), title_width))
    lines = max([caption.count("\n") + 1 for caption in captions] or [1])
    row_height = height + 0.15 * lines + 0.12
    heights = [row_height + 0.18] + [row_height] * (rows - 1) + [0.55]  # the first row holds column names
    fig = Figure(figsize=(3 * width + 0.3, sum(heights) + 0.35 + 0.3 * bool(suptitle)), layout="constrained")
    *row_figures, bar_figure = fig.subfigures(rows + 1, 1, height_ratios=heights)
    for row, row_figure in enumerate(row_figures):
        axes = row_figure.subplots(1, 3)
        for ax in axes:
            ax.axis("off")
        if row >= len(images):
            axes[0].text(0.5, 0.5, "no image", ha="center", va="center", transform=axes[0].transAxes)
            continue
        base, cmap = _grey(images[row])
        axes[0].imshow(base, cmap=cmap, vmin=0, vmax=1)
        axes[1].imshow(np.clip(heatmaps[row], 0, 1), cmap=HEATMAP_CMAP, vmin=0, vmax=1)
        draw_overlay(axes[2], images[row], heatmaps[row], opacity=alpha)
        row_figure.suptitle(captions[row], fontsize=8)
        if row == 0:
            for ax, name in zip(axes, ("image", "heatmap", "heatmap over the image")):
                ax.set_title(name, fontsize=8, color="dimgray")
    bar_ax = bar_figure.add_axes((0.2, 0.62, 0.6, 0.18), label="<colorbar>")
    heatmap_colorbar(bar_figure, None, cax=bar_ax, orientation="horizontal",
                     label="heatmap, fraction of the image's own peak")
    bar_ax.tick_params(labelsize=7)
    bar_ax.xaxis.label.set_size(8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def average_heatmap_grid(mean_grid: np.ndarray, class_names: Sequence[str],
                         mean_images: np.ndarray | None = None) -> Figure:
    """C x C average heatmaps: row = true class of the images, column = class the map explains.

    Raw Grad-CAM is signed: one diverging scale centred on zero (white) for every cell, so rows and
    columns compare directly and evidence for (red) and against (blue) a class read apart. With
    `mean_images` ((C, H, W) or (C, H, W, 3), uint8 or [0, 1]: the average image of each true class) each
    row's maps lie over its class's average X-ray, opaque where the map is strong.
    """
    num = len(class_names)
    limit = symmetric_limit(mean_grid)
    colours = class_colours(class_names)
    side = min(1.9, 9.0 / num)  # at most 9 inches of panels a side, however many classes
    chars = max(int(side / 0.06), 6)  # characters of a 7 pt label that fit one panel
    shape = np.shape(mean_images)[1:] if mean_images is not None else np.shape(mean_grid)[2:]
    width, height = panel_size(shape, side)
    fig = Figure(figsize=(width * num + 1.6, height * num + 0.9), layout="constrained")
    axes = fig.subplots(num, num, squeeze=False)
    image = None
    for t in range(num):
        background = None
        if mean_images is not None and np.isfinite(np.asarray(mean_images[t], dtype=np.float32)).all():
            background = mean_images[t]
        for c in range(num):
            ax = axes[t, c]
            if np.isfinite(mean_grid[t, c]).any():
                image = draw_signed(ax, background, mean_grid[t, c], limit)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.text(0.5, 0.5, "no test image", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            if t == 0:
                ax.set_title(wrap_caption(f"explains {class_names[c]}", chars), fontsize=7,
                             color=colours[class_names[c]])
            if c == 0:
                ax.set_ylabel(wrap_caption(f"true {class_names[t]}", chars), fontsize=7, color=colours[class_names[t]])
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="average raw Grad-CAM (0 = white or transparent)")
    under = " over each true class's average image" if mean_images is not None else ""
    fig.suptitle(f"Average Grad-CAM per (true class, explained class){under}", fontsize=10)
    return fig


def heatmap_boxplots(box_summaries: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Box plots (min, q1, median, q3, max) of raw heatmap values, one panel per true class, one box (in
    the class's colour) per explained class."""
    num = len(class_names)
    colours = class_colours(class_names)
    fig = Figure(figsize=(2.8 * num, 3.4), layout="constrained")
    axes = fig.subplots(1, num, squeeze=False, sharey=True)
    for t in range(num):
        stats = [
            {"label": class_names[c], "whislo": s[0], "q1": s[1], "med": s[2], "q3": s[3], "whishi": s[4]}
            for c, s in enumerate(box_summaries[t]) if np.isfinite(s).all()
        ]
        ax = axes[0, t]
        if stats:
            boxes = ax.bxp(stats, showfliers=False, patch_artist=True, medianprops={"color": "black"})
            for box, entry in zip(boxes["boxes"], stats):
                box.set_facecolor(colours[entry["label"]])
                box.set_alpha(0.8)
        ax.set_title(f"true {class_names[t]}", fontsize=9, color=colours[class_names[t]])
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.axhline(0.0, color="black", linewidth=0.5)
    axes[0, 0].set_ylabel("raw Grad-CAM value")
    fig.suptitle("Heatmap values per explained class")
    return fig


def four_colour_map(composite: np.ndarray, class_names: Sequence[str], mean_image: np.ndarray | None = None,
                    mean_maps: np.ndarray | None = None, min_relevance: float = 0.5,
                    map_name: str = "Grad-CAM") -> Figure:
    """Each pixel coloured by the class whose (normalised) average heatmap is largest there.

    With `mean_image` ((H, W) or (C, H, W) in [0, 1] or uint8: the average explained X-ray) the colours
    are drawn over it. With `mean_maps` ((C, h, w): each class's average raw map over its own images,
    the maps `composite` was computed from) the composite is recomputed at image resolution and a
    pixel is coloured only where the winning class's ReLU'd average reaches `min_relevance` of its peak.
    """
    colours = [class_colour(k) for k in range(len(class_names))]
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
    extent, opacity, grey = None, 1.0, 1.0
    if mean_image is not None:
        base, cmap = as_display_image(mean_image)
        ax.imshow(base, cmap=cmap, vmin=0, vmax=1, interpolation="bilinear")
        extent = (-0.5, shape[1] - 0.5, shape[0] - 0.5, -0.5)
        opacity, grey = FOUR_COLOUR_OPACITY, float(base.mean())
    composite = np.asarray(composite)
    rgba = ListedColormap(colours)(composite)
    rgba[..., 3] = opacity if shown is None else np.where(shown, opacity, 0.0)
    ax.imshow(rgba, interpolation="nearest", extent=extent)
    coloured = np.ones(composite.shape, bool) if shown is None else shown
    for k, colour in enumerate(colours):  # a solid outline in the legend's colour around each region
        region = ((composite == k) & coloured).astype(float)
        if 0 < region.sum() < region.size:
            ax.contour(region, levels=[0.5], colors=[colour], linewidths=1.6, extent=extent, origin="upper")
    ax.axis("off")
    # Legend patches as the regions look: the colour at the regions' opacity over the image's mean grey.
    faces = [opacity * np.asarray(to_rgb(c)) + (1 - opacity) * grey for c in colours]
    ax.legend(handles=[Patch(facecolor=f, edgecolor=c, linewidth=1.6, label=ellipsise(n, 24))
                       for f, c, n in zip(faces, colours, class_names)],
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8)
    title = "Strongest class per pixel"
    if shown is not None:
        title += f"\n(where its average {map_name} is \u2265 {min_relevance:.0%} of its peak)"
    ax.set_title(title, fontsize=10)
    return fig


def eigen_heatmaps_figure(class_name: str, mean: np.ndarray, components: np.ndarray,
                          variance_ratio: np.ndarray, example: np.ndarray, reconstruction: np.ndarray,
                          max_components: int = 24, variance: float | None = None,
                          map_name: str = "Grad-CAM",
                          mean_image: np.ndarray | None = None) -> Figure:
    """Average map, one heatmap and its reconstruction, and the eigen-heatmaps (all kept ones up to
    `max_components`, EIGEN_COLUMNS a row), each with its share of the variance and the cumulative share,
    which reaches `variance`, the cut-off, at the last one. The width is the same for every class.

    Raw maps (average, heatmap, reconstruction) share one diverging scale centred on zero; the
    unit-norm components share another. With `mean_image` ((H, W) or (C, H, W), uint8 or [0, 1]: the
    class's average image) every map lies over it, opaque where the map is strong.
    """
    total = len(components)
    shown = components[:max_components]
    cumulative = np.cumsum(variance_ratio)
    component_rows = max(int(np.ceil(len(shown) / EIGEN_COLUMNS)), 1)
    width, height = panel_size(np.shape(mean_image) if mean_image is not None else np.shape(mean), 1.45)
    fig = Figure(figsize=(width * EIGEN_COLUMNS + 1.3, (height + 0.3) * (1 + component_rows) + 1.0),
                 layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, component_rows])
    grid = top.add_gridspec(1, EIGEN_COLUMNS)
    raw_axes = [top.add_subplot(grid[0, k]) for k in range(3)]
    note = top.add_subplot(grid[0, 3:])
    note.axis("off")
    note.text(0.05, 0.5, EIGEN_NOTE + (" Drawn over the class's average image." if mean_image is not None else ""),
              fontsize=8, va="center", transform=note.transAxes, color="dimgray", wrap=True)
    raw_limit = symmetric_limit(np.stack([mean, example, reconstruction]))
    raw_image = None
    for ax, (image, title) in zip(raw_axes, [(mean, "average map"), (example, "one map"),
                                             (reconstruction, f"its reconstruction\nfrom {total} components")]):
        raw_image = draw_signed(ax, mean_image, image, raw_limit)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    top.colorbar(raw_image, ax=raw_axes, shrink=0.85, label=f"raw {map_name}")
    component_axes = bottom.subplots(component_rows, EIGEN_COLUMNS, squeeze=False)
    component_limit = symmetric_limit(shown) if len(shown) else 1.0
    component_image = None
    for k, ax in enumerate(component_axes.flat):
        ax.axis("off")
        if k < len(shown):
            component_image = draw_signed(ax, mean_image, shown[k], component_limit)
            ax.set_title(f"eigen {k + 1}: {variance_ratio[k]:.1%}\ncumulative {cumulative[k]:.1%}", fontsize=8)
    if component_image is not None:
        used = component_axes[0, :len(shown)] if component_rows == 1 else component_axes
        bottom.colorbar(component_image, ax=used, shrink=0.85, label="eigen-heatmap (unit norm)")
    cut = f" (cut-off {variance:.0%})" if variance is not None else ""
    kept = f"{total} component{'s' if total != 1 else ''} explain {float(np.sum(variance_ratio)):.1%} of the variance{cut}"
    if len(shown) < total:
        kept += f"; first {len(shown)} shown"
    fig.suptitle(f"Eigen-heatmaps of {ellipsise(class_name, 32)}\n{kept}", fontsize=10)
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
            ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=class_colour(c),
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
