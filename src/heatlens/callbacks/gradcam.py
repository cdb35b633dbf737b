"""Grad-CAM of the explained test images: raw maps of every class, thumbnails, and overlays per class."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.rows import CamRows
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import cam
from heatlens.naming import slug
from heatlens.plots import explain as plots

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class GradCamCallback(ExplanationCallback):
    """Raw Grad-CAM for every class at feature resolution with a small thumbnail of each image
    (`explain/gradcam.npz`), and overlays of test images per true class, correctly and wrongly
    classified: image, heatmap, heatmap over the image (`figures/gradcam/<Class>.png`). Multi-label: per finding, images
    showing it that the model detects and misses, under that finding's map."""

    name = "gradcam"

    def __init__(self, samples_per_group: int = 2, alpha: float = 0.5) -> None:
        if samples_per_group < 0:
            raise ExplainCallbackError(f"samples_per_group={samples_per_group}: must be >= 0")
        if not 0 < alpha <= 1:
            raise ExplainCallbackError(f"explain.callbacks.gradcam.alpha={alpha}: the overlay's opacity lies in (0, 1]")
        self.samples_per_group = samples_per_group
        self.alpha = float(alpha)

    def explain(self, sample: ExplainedSample) -> Findings | None:
        rows = sample.gathered_cams()
        if rows is None or not len(rows.index):
            return None
        arrays = dict(ids=rows.ids, index=rows.index, labels=rows.labels, predictions=rows.predictions,
                      probabilities=rows.probabilities.astype(np.float32), heatmaps=rows.maps.astype(np.float16),
                      thumbnails=rows.thumbnails, class_names=np.asarray(sample.class_names))
        figures = {}
        for c, name in enumerate(sample.class_names):
            shown = self._shown(rows, c)
            if len(shown[0]):
                figures[f"figures/gradcam/{slug(name)}.png"] = partial(self._overlays, sample, rows, c, shown)
        return Findings(arrays={"explain/gradcam.npz": arrays}, figures=figures)

    def _shown(self, rows: CamRows, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows shown for class c (up to `samples_per_group` hits, then misses), whether each row is a hit,
        and the class whose map explains each row."""
        if rows.multilabel:  # images showing finding c, detected or missed, under finding c's own map
            of_class = rows.labels[:, c] == 1
            hit = rows.predictions[:, c] == 1
            explained = np.full(len(rows.index), c)
        else:
            of_class = rows.labels == c
            hit = rows.predictions == c
            explained = rows.predictions  # the map of the predicted class: what the decision rested on
        correct = np.flatnonzero(of_class & hit)[: self.samples_per_group]
        wrong = np.flatnonzero(of_class & ~hit)[: self.samples_per_group]
        return np.concatenate([correct, wrong]), hit, explained

    def _overlays(self, sample: ExplainedSample, rows: CamRows, c: int,
                  shown: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Figure:
        predictions, probabilities = rows.predictions, rows.probabilities
        names = sample.class_names
        chosen, hit, explained = shown
        images = sample.images_at(rows.index[chosen])
        maps = torch.from_numpy(rows.maps_of(explained)[chosen]).float()
        heat = cam.normalize_per_image(cam.upsample(cam.relu(maps), tuple(images.shape[-2:])))
        if rows.multilabel:
            titles = [f"{'detected' if hit[r] else 'MISSED'}: {names[c]} ({probabilities[r, c]:.2f})\n{rows.ids[r]}"
                      for r in chosen]
            suptitle = f"Grad-CAM, finding {names[c]}"
        else:
            titles = [f"{'correct' if hit[r] else 'WRONG'}: {names[predictions[r]]} "
                      f"({probabilities[r, predictions[r]]:.2f})\n{rows.ids[r]}" for r in chosen]
            suptitle = f"Grad-CAM, true class {names[c]}"
        return plots.gradcam_overlays(images.numpy(), heat.numpy(), titles, self.alpha, suptitle=suptitle,
                                      explained=[names[explained[r]] for r in chosen])
