"""Grad-CAM of the explained test images: raw maps of every class, thumbnails, and overlays per class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.sample import CamRows, ExplainedSample
from heatlens.explain import cam
from heatlens.naming import slug
from heatlens.plots import explain as plots

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class GradCamCallback(ExplanationCallback):
    """Raw Grad-CAM for every class at feature resolution with a small thumbnail of each image
    (`explain/gradcam.npz`), and overlays of test images per true class, correctly and wrongly
    classified, at several blend levels (`figures/gradcam/<Class>.png`)."""

    name = "gradcam"

    def __init__(self, samples_per_group: int = 2, alphas: Sequence[float] = (0.3, 0.5, 0.7)) -> None:
        if samples_per_group < 0:
            raise ExplainCallbackError(f"samples_per_group={samples_per_group}: must be >= 0")
        if not alphas or any(not 0 <= a <= 1 for a in alphas):
            raise ExplainCallbackError(f"alphas={list(alphas)}: blend levels must lie in [0, 1]")
        self.samples_per_group = samples_per_group
        self.alphas = tuple(float(a) for a in alphas)

    def explain(self, sample: ExplainedSample) -> Findings | None:
        rows = sample.gathered_cams()
        if rows is None or not len(rows.index):
            return None
        arrays = dict(ids=rows.ids, index=rows.index, labels=rows.labels, predictions=rows.predictions,
                      probabilities=rows.probabilities.astype(np.float32), heatmaps=rows.maps.astype(np.float16),
                      thumbnails=rows.thumbnails, class_names=np.asarray(sample.class_names))
        figures = {}
        for c, name in enumerate(sample.class_names):
            figure = self._overlays(sample, rows, c)
            if figure is not None:
                figures[f"figures/gradcam/{slug(name)}.png"] = figure
        return Findings(arrays={"explain/gradcam.npz": arrays}, figures=figures)

    def _overlays(self, sample: ExplainedSample, rows: CamRows, c: int) -> Figure | None:
        predictions, probabilities = rows.predictions, rows.probabilities
        of_class = rows.labels == c
        correct = np.flatnonzero(of_class & (predictions == c))[: self.samples_per_group]
        wrong = np.flatnonzero(of_class & (predictions != c))[: self.samples_per_group]
        chosen = np.concatenate([correct, wrong])
        if not len(chosen):
            return None
        images = sample.images_at(rows.index[chosen])
        # The map of the predicted class: what the model looked at for the decision it made.
        maps = torch.from_numpy(rows.maps_of(predictions)[chosen]).float()
        heat = cam.normalize_per_image(cam.upsample(cam.relu(maps), tuple(images.shape[-2:])))
        names = sample.class_names
        titles = [f"{'correct' if predictions[r] == c else 'WRONG'}: {names[predictions[r]]} "
                  f"({probabilities[r, predictions[r]]:.2f})\n{rows.ids[r]}" for r in chosen]
        return plots.gradcam_overlays(images.numpy(), heat.numpy(), titles, self.alphas,
                                      suptitle=f"Grad-CAM, true class {names[c]}",
                                      explained=[names[predictions[r]] for r in chosen])
