"""Grad-CAM of the test set: raw maps, overlays, the average-heatmap grid and eigen-heatmaps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback
from heatlens.callbacks.context import ExplainContext
from heatlens.explain import cam, stats
from heatlens.explain.eigen import ClassEigenAccumulator
from heatlens.plots import explain as plots
from heatlens.tracking.reports import slug

STATS_CHUNK = 256  # heatmaps per streamed update on rank 0


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.from_numpy(logits).float().softmax(dim=1).numpy()


class GradCamCallback(ExplanationCallback):
    """Raw Grad-CAM for every class at feature resolution (`explain/gradcam.npz`) and overlays of
    sample test images per class, correctly and wrongly classified, at several blend levels."""

    name = "gradcam"

    def __init__(self, max_images: int | None = 256, samples_per_group: int = 2,
                 alphas: Sequence[float] = (0.3, 0.5, 0.7)) -> None:
        self.max_images = self.check_max_images(max_images, "explain.max_images")
        if samples_per_group < 0:
            raise ExplainCallbackError(f"samples_per_group={samples_per_group}: must be >= 0")
        if not alphas or any(not 0 <= a <= 1 for a in alphas):
            raise ExplainCallbackError(f"alphas={list(alphas)}: blend levels must lie in [0, 1]")
        self.samples_per_group = samples_per_group
        self.alphas = tuple(float(a) for a in alphas)

    def explain(self, context: ExplainContext) -> None:
        gathered = context.gathered_cams(self.max_images)
        if gathered is None:
            return
        index, maps, labels = gathered["index"], gathered["maps"], gathered["labels"]
        probs = _softmax(gathered["logits"])
        predictions = probs.argmax(axis=1)
        context.run.log_arrays(
            "explain/gradcam.npz",
            ids=context.ids(index), index=index, labels=labels, predictions=predictions,
            probabilities=probs.astype(np.float32), heatmaps=maps.astype(np.float16),
            class_names=np.asarray(context.class_names),
        )
        for c, name in enumerate(context.class_names):
            self._log_overlays(context, c, name, index, maps, labels, predictions, probs)

    def _log_overlays(self, context: ExplainContext, c: int, name: str, index: np.ndarray, maps: np.ndarray,
                      labels: np.ndarray, predictions: np.ndarray, probs: np.ndarray) -> None:
        of_class = labels == c
        correct = np.flatnonzero(of_class & (predictions == c))[: self.samples_per_group]
        wrong = np.flatnonzero(of_class & (predictions != c))[: self.samples_per_group]
        rows = np.concatenate([correct, wrong])
        if not len(rows):
            return
        images = context.images_at(index[rows])
        # The map of the predicted class: what the model looked at for the decision it made.
        chosen = torch.from_numpy(maps[rows, predictions[rows]]).float()
        heat = cam.normalize_per_image(cam.upsample(cam.relu(chosen), tuple(images.shape[-2:])))
        ids = context.ids(index[rows])
        titles = [
            f"{'correct' if predictions[r] == c else 'WRONG'}: {context.class_names[predictions[r]]} "
            f"({probs[r, predictions[r]]:.2f})\n{ids[k][-28:]}"
            for k, r in enumerate(rows)
        ]
        figure = plots.gradcam_overlays(images.numpy(), heat.numpy(), titles, self.alphas,
                                        suptitle=f"Grad-CAM, true class {name}")
        context.run.log_figure(figure, f"figures/gradcam/{slug(name)}.png")


class HeatmapStatsCallback(ExplanationCallback):
    """Streams the gathered Grad-CAM maps through the C x C average grid, box-plot summaries, the
    four-colour map and per-class eigen-heatmaps (`explain/heatmap_stats.npz` and figures)."""

    name = "heatmap_stats"

    def __init__(self, max_images: int | None = 256, variance: float = 0.95, max_components: int = 6) -> None:
        self.max_images = self.check_max_images(max_images, "explain.max_images")
        if not 0 < variance <= 1:
            raise ExplainCallbackError(f"variance={variance}: the share of variance to keep lies in (0, 1]")
        self.variance = variance
        self.max_components = max_components

    def explain(self, context: ExplainContext) -> None:
        gathered = context.gathered_cams(self.max_images)
        if gathered is None or not len(gathered["index"]):
            return
        maps, labels = gathered["maps"], gathered["labels"]
        names = context.class_names
        accumulator = stats.HeatmapStats(len(names), maps.shape[-2:])
        eigen = ClassEigenAccumulator(len(names), maps.shape[-2:])
        for start in range(0, len(maps), STATS_CHUNK):
            chunk, chunk_labels = maps[start:start + STATS_CHUNK], labels[start:start + STATS_CHUNK]
            accumulator.update(chunk, chunk_labels)
            eigen.update(chunk[np.arange(len(chunk)), chunk_labels], chunk_labels)
        grid, boxes = accumulator.mean_grid(), accumulator.box_summaries()
        composite = stats.four_colour_composite(np.nan_to_num(accumulator.mean_explained()))
        arrays = {"mean_grid": grid, "box_summaries": boxes, "four_colour": composite,
                  "counts": accumulator.counts, "class_names": np.asarray(names)}
        run = context.run
        run.log_figure(plots.average_heatmap_grid(grid, names), "figures/heatmaps/average_grid.png")
        run.log_figure(plots.heatmap_boxplots(boxes, names), "figures/heatmaps/boxplots.png")
        run.log_figure(plots.four_colour_map(composite, names), "figures/heatmaps/four_colour.png")
        for c, result in enumerate(eigen.results(self.variance)):
            if result is None:
                continue
            key = slug(names[c])
            arrays |= {f"eigen_{key}_mean": result.mean, f"eigen_{key}_components": result.components,
                       f"eigen_{key}_variance_ratio": result.explained_variance_ratio}
            example = maps[np.flatnonzero(labels == c)[0], c]
            figure = plots.eigen_heatmaps_figure(names[c], result.mean, result.components,
                                                 result.explained_variance_ratio, example,
                                                 result.reconstruct(example), self.max_components)
            run.log_figure(figure, f"figures/heatmaps/eigen_{key}.png")
        run.log_arrays("explain/heatmap_stats.npz", **arrays)
