"""Expensive explanations on a small sample (rank 0 only): gradient attributions and the sanity check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback
from heatlens.callbacks.context import ExplainContext
from heatlens.explain import attributions, cam, sanity
from heatlens.plots import explain as plots


def _sample(context: ExplainContext, num_images: int) -> tuple[np.ndarray, torch.Tensor, np.ndarray]:
    """The first `num_images` test positions, their normalised images (on device) and labels."""
    index = context.selected(num_images)
    items = [context.dataset[int(i)] for i in index]
    images = torch.stack([item["image"] for item in items]).to(context.device)
    labels = np.asarray([int(item["label"]) for item in items], dtype=np.int64)
    return index, images, labels


def _predicted(context: ExplainContext, images: torch.Tensor) -> torch.Tensor:
    return cam.gradcam_all_classes(context.net, images).logits.argmax(dim=1).cpu()


class AttributionsCallback(ExplanationCallback):
    """Pixel attributions of the predicted class for `num_images` test images, one column per method:
    `figures/attributions/grid.png` and `explain/attributions.npz` (float16 maps, channel-summed |a|)."""

    name = "attributions"

    def __init__(self, num_images: int = 4, methods: Sequence[str] = ("saliency", "smoothgrad", "integrated_gradients"),
                 options: Mapping[str, Mapping] | None = None, seed: int = 0) -> None:
        unknown = [m for m in methods if m not in attributions.METHODS]
        if unknown or not methods:
            raise ExplainCallbackError(
                f"attributions methods={list(methods)}: choose from {', '.join(attributions.METHODS)}")
        if num_images < 1:
            raise ExplainCallbackError(f"attributions num_images={num_images}: must be >= 1")
        self.num_images = num_images
        self.methods = list(methods)
        self.options = {m: dict(o) for m, o in (options or {}).items()}
        self.seed = seed

    def explain(self, context: ExplainContext) -> None:
        if context.rank != 0:
            return
        index, images, labels = _sample(context, self.num_images)
        targets = _predicted(context, images)
        maps = {}
        for method in self.methods:
            with context.timer.stage(f"attributions_{method}"):
                result = attributions.attribute(method, context.net, images, targets, seed=self.seed,
                                                **self.options.get(method, {}))
            maps[method] = attributions.to_heatmap(result).numpy()
        names = context.class_names
        titles = [f"true {names[y]} / pred {names[p]}" for y, p in zip(labels, targets.tolist())]
        shown = context.denormalize(images).cpu().numpy()
        context.run.log_figure(plots.attribution_grid(shown, maps, titles), "figures/attributions/grid.png")
        context.run.log_arrays("explain/attributions.npz", ids=context.ids(index), index=index, labels=labels,
                               targets=targets.numpy(), **{m: v.astype(np.float16) for m, v in maps.items()})


def _gradcam_of_targets(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return cam.heatmaps_for(cam.gradcam_all_classes(model, images), targets)


def _spread(layers: list[str], count: int) -> list[str]:
    """`count` layers evenly spread over the cascade, always ending with the last (all randomised)."""
    if len(layers) <= count:
        return layers
    picks = np.linspace(0, len(layers) - 1, count).round().astype(int)
    return [layers[i] for i in sorted(set(picks.tolist()))]


class SanityCallback(ExplanationCallback):
    """Cascading model-parameter randomisation of Grad-CAM (Adebayo et al.) on `num_images` images.

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

    def explain(self, context: ExplainContext) -> None:
        if context.rank != 0:
            return
        _, images, _ = _sample(context, self.num_images)
        targets = _predicted(context, images)
        layers = _spread(sanity.parameter_layers(context.net), self.max_layers)
        scores = sanity.cascading_randomisation(context.net, images, targets, _gradcam_of_targets,
                                                seed=self.seed, layers=layers)
        context.run.log_metrics({"xai/sanity_rank_corr": scores[layers[-1]]})
        context.run.log_dict({"explainer": "gradcam", "num_images": len(images), "cascade": scores},
                             "reports/sanity.json")
        context.run.log_figure(plots.sanity_figure(scores), "figures/sanity/cascade.png")
