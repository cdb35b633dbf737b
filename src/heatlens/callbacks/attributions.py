"""Gradient attributions of the predicted class on a small part of the sample (rank 0 only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import numpy as np

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import attributions, cam
from heatlens.plots import explain as plots


class AttributionsCallback(ExplanationCallback):
    """Pixel attributions of the predicted class for the first `num_images` images of the sample, one
    column per method: `figures/attributions/grid.png` and `explain/attributions.npz` (float16 maps,
    channel-summed |a|); `time/attributions_<method>_s` per method."""

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

    def explain(self, sample: ExplainedSample) -> Findings | None:
        if sample.rank != 0:
            return None
        index = sample.first(self.num_images)
        images, labels = sample.load(index)
        targets = cam.gradcam_all_classes(sample.net, images).logits.argmax(dim=1).cpu()
        maps = {}
        with sample.progress(len(self.methods), "explain: attributions") as advance:
            for method in self.methods:
                with sample.timer.stage(f"attributions_{method}"):
                    result = attributions.attribute(method, sample.net, images, targets, seed=self.seed,
                                                    **self.options.get(method, {}))
                maps[method] = attributions.to_heatmap(result).numpy()
                advance(1)
        names = sample.class_names
        if labels.ndim == 2:  # multi-label: the positive findings, and the most probable one (explained)
            titles = [f"{', '.join(names[k] for k in np.flatnonzero(y == 1)) or 'no finding'} / top {names[p]}"
                      for y, p in zip(labels, targets.tolist())]
        else:
            titles = [f"true {names[y]} / pred {names[p]}" for y, p in zip(labels, targets.tolist())]
        shown = sample.denormalize(images).cpu().numpy()
        return Findings(
            figures={"figures/attributions/grid.png": partial(plots.attribution_grid, shown, maps, titles)},
            arrays={"explain/attributions.npz": dict(ids=sample.ids_of(index), index=index, labels=labels,
                                                     targets=targets.numpy(),
                                                     **{m: v.astype(np.float16) for m, v in maps.items()})})
