"""Average heatmaps of the explained test images: the C x C grid, box plots, four-colour map, eigen-heatmaps."""

from __future__ import annotations

from functools import partial

import numpy as np

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings, each_method, per_method
from heatlens.callbacks.rows import targets_of
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import stats
from heatlens.explain.eigen import ClassEigenAccumulator
from heatlens.naming import slug
from heatlens.plots import explain as plots

STATS_CHUNK = 256  # heatmaps per streamed update on rank 0


class HeatmapStatsCallback(ExplanationCallback):
    """Streams the gathered Grad-CAM maps through the C x C average grid, box-plot summaries, the
    four-colour map and per-class eigen-heatmaps (`explain/heatmap_stats.npz` and figures). Multi-label:
    one row per (image, positive finding), so grid row k averages the images showing finding k and the
    eigen-heatmaps are per finding. Every other method of `explain.methods` (maps of the explained class
    only) gets its per-class averages, four-colour map and eigen-heatmaps under `methods/<method>/`."""

    name = "heatmap_stats"

    def __init__(self, variance: float = 0.95, max_components: int = 24) -> None:
        if not 0 < variance <= 1:
            raise ExplainCallbackError(f"variance={variance}: the share of variance to keep lies in (0, 1]")
        self.variance = variance
        self.max_components = max_components

    def explain(self, sample: ExplainedSample) -> Findings | None:
        def one(method: str) -> Findings | None:
            return self._gradcam(sample) if method == "gradcam" else self._method(sample, method)

        return each_method(sample.step_methods, one)

    def _gradcam(self, sample: ExplainedSample) -> Findings | None:
        rows = sample.gathered_cams()
        if rows is None or not len(rows.index):
            return None
        targets = targets_of(rows, "label", len(sample.class_names))
        maps, labels, names = rows.maps[targets.rows], targets.groups, sample.class_names
        accumulator = stats.HeatmapStats(len(names), maps.shape[-2:])
        eigen = ClassEigenAccumulator(len(names), maps.shape[-2:])
        for start in range(0, len(maps), STATS_CHUNK):
            chunk, chunk_labels = maps[start:start + STATS_CHUNK], labels[start:start + STATS_CHUNK]
            accumulator.update(chunk, chunk_labels)
            eigen.update(chunk[np.arange(len(chunk)), chunk_labels], chunk_labels)
        grid, boxes = accumulator.mean_grid(), accumulator.box_summaries()
        explained = accumulator.mean_explained()
        composite = stats.four_colour_composite(np.nan_to_num(explained))
        mean_image = rows.thumbnails.mean(axis=0) / 255.0  # the average explained X-ray, thumbnail size
        arrays = {"mean_grid": grid, "box_summaries": boxes, "four_colour": composite,
                  "counts": accumulator.counts, "class_names": np.asarray(names)}
        class_images = stats.class_means(rows.thumbnails[targets.rows] / 255.0, labels, len(names))
        figures = {"figures/heatmaps/average_grid.png": partial(plots.average_heatmap_grid, grid, names, class_images),
                   "figures/heatmaps/boxplots.png": partial(plots.heatmap_boxplots, boxes, names),
                   "figures/heatmaps/four_colour.png": partial(plots.four_colour_map, composite, names,
                                                               mean_image=mean_image, mean_maps=explained)}
        self._eigen(eigen, names, maps[np.arange(len(maps)), labels], labels, arrays, figures, "Grad-CAM",
                    class_images)
        return Findings(arrays={"explain/heatmap_stats.npz": arrays}, figures=figures)

    def _method(self, sample: ExplainedSample, method: str) -> Findings | None:
        rows = sample.gathered_maps(method, "label")
        if rows is None or not len(rows.index):
            return None
        names, maps, labels = sample.class_names, rows.maps, rows.groups
        eigen = ClassEigenAccumulator(len(names), maps.shape[-2:])
        eigen.update(maps, labels)
        counts = np.bincount(labels, minlength=len(names))
        means = stats.class_means(maps, labels, len(names)).astype(np.float32)  # NaN for a class without images
        composite = stats.four_colour_composite(np.nan_to_num(means))
        arrays = {"mean_explained": means, "four_colour": composite, "counts": counts,
                  "class_names": np.asarray(names)}
        figures = {"figures/heatmaps/four_colour.png": partial(
            plots.four_colour_map, composite, names, mean_image=rows.thumbnails.mean(axis=0) / 255.0, mean_maps=means,
            map_name=method)}
        self._eigen(eigen, names, maps, labels, arrays, figures, method,
                    stats.class_means(rows.thumbnails / 255.0, labels, len(names)))
        return per_method(Findings(arrays={"explain/heatmap_stats.npz": arrays}, figures=figures), method,
                          sample.methods)

    def _eigen(self, eigen: ClassEigenAccumulator, names: list[str], explained: np.ndarray, labels: np.ndarray,
               arrays: dict, figures: dict, map_name: str, class_images: np.ndarray) -> None:
        """Eigen-heatmaps of each class with two or more maps, over the class's average image: arrays and
        one figure each."""
        for c, result in enumerate(eigen.results(self.variance)):
            if result is None:
                continue
            key = slug(names[c])
            arrays |= {f"eigen_{key}_mean": result.mean, f"eigen_{key}_components": result.components,
                       f"eigen_{key}_variance_ratio": result.explained_variance_ratio}
            example = explained[np.flatnonzero(labels == c)[0]]
            figures[f"figures/heatmaps/eigen_{key}.png"] = partial(
                plots.eigen_heatmaps_figure, names[c], result.mean, result.components, result.explained_variance_ratio,
                example, result.reconstruct(example), self.max_components, variance=self.variance, map_name=map_name,
                mean_image=class_images[c])
