"""Average heatmaps of the explained test images: the C x C grid, box plots, four-colour map, eigen-heatmaps."""

from __future__ import annotations

import numpy as np

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import stats
from heatlens.explain.eigen import ClassEigenAccumulator
from heatlens.naming import slug
from heatlens.plots import explain as plots

STATS_CHUNK = 256  # heatmaps per streamed update on rank 0


class HeatmapStatsCallback(ExplanationCallback):
    """Streams the gathered Grad-CAM maps through the C x C average grid, box-plot summaries, the
    four-colour map and per-class eigen-heatmaps (`explain/heatmap_stats.npz` and figures)."""

    name = "heatmap_stats"

    def __init__(self, variance: float = 0.95, max_components: int = 24) -> None:
        if not 0 < variance <= 1:
            raise ExplainCallbackError(f"variance={variance}: the share of variance to keep lies in (0, 1]")
        self.variance = variance
        self.max_components = max_components

    def explain(self, sample: ExplainedSample) -> Findings | None:
        rows = sample.gathered_cams()
        if rows is None or not len(rows.index):
            return None
        maps, labels, names = rows.maps, rows.labels, sample.class_names
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
        figures = {"figures/heatmaps/average_grid.png": plots.average_heatmap_grid(grid, names),
                   "figures/heatmaps/boxplots.png": plots.heatmap_boxplots(boxes, names),
                   "figures/heatmaps/four_colour.png": plots.four_colour_map(composite, names, mean_image=mean_image,
                                                                             mean_maps=explained)}
        for c, result in enumerate(eigen.results(self.variance)):
            if result is None:
                continue
            key = slug(names[c])
            arrays |= {f"eigen_{key}_mean": result.mean, f"eigen_{key}_components": result.components,
                       f"eigen_{key}_variance_ratio": result.explained_variance_ratio}
            example = maps[np.flatnonzero(labels == c)[0], c]
            figures[f"figures/heatmaps/eigen_{key}.png"] = plots.eigen_heatmaps_figure(
                names[c], result.mean, result.components, result.explained_variance_ratio, example,
                result.reconstruct(example), self.max_components, variance=self.variance)
        return Findings(arrays={"explain/heatmap_stats.npz": arrays}, figures=figures)
