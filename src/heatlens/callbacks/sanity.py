"""Sanity check of Grad-CAM (cascading model-parameter randomisation) on a small part of the sample (rank 0)."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import cam, sanity
from heatlens.plots import explain as plots


def _gradcam_of_targets(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return cam.heatmaps_for(cam.gradcam_all_classes(model, images), targets)


def _spread(layers: list[str], count: int) -> list[str]:
    """`count` layers evenly spread over the cascade, always ending with the last (all randomised)."""
    if len(layers) <= count:
        return layers
    picks = np.linspace(0, len(layers) - 1, count).round().astype(int)
    return [layers[i] for i in sorted(set(picks.tolist()))]


class SanityCallback(ExplanationCallback):
    """Cascading model-parameter randomisation of Grad-CAM (Adebayo et al.) on the first `num_images`
    images of the sample.

    `xai/sanity_rank_corr` is the mean Spearman correlation between the trained model's Grad-CAM and
    the Grad-CAM once every layer is randomised (near 0: the maps depend on the weights). The
    cascade (`figures/sanity/cascade.png`, `reports/sanity.json`) scores `max_layers` layers.
    Works on a copy of the model.
    """

    name = "sanity"

    def __init__(self, num_images: int = 8, max_layers: int = 6, seed: int = 0) -> None:
        if num_images < 1 or max_layers < 1:
            raise ExplainCallbackError(f"sanity num_images={num_images}, max_layers={max_layers}: both must be >= 1")
        self.num_images = num_images
        self.max_layers = max_layers
        self.seed = seed

    def explain(self, sample: ExplainedSample) -> Findings | None:
        if sample.rank != 0:
            return None
        images, _ = sample.load(sample.first(self.num_images))
        targets = cam.gradcam_all_classes(sample.net, images).logits.argmax(dim=1).cpu()
        layers = _spread(sanity.parameter_layers(sample.net), self.max_layers)
        with sample.progress(len(layers), "explain: sanity check") as advance:
            scores = sanity.cascading_randomisation(sample.net, images, targets, _gradcam_of_targets,
                                                    seed=self.seed, layers=layers, advance=advance)
        return Findings(
            metrics={"xai/sanity_rank_corr": scores[layers[-1]]},
            documents={"reports/sanity.json": {"explainer": "gradcam", "num_images": len(images),
                                               "cascade": scores}},
            figures={"figures/sanity/cascade.png": partial(plots.sanity_figure, scores)})
