"""Shortcut audit: per true class, does the model look outside the anatomy, at the border or a corner?"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings, each_method, per_method
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import shortcut
from heatlens.explain.errors import ExplainError
from heatlens.naming import slug
from heatlens.plots.shortcut import shortcut_figure


class ShortcutCallback(ExplanationCallback):
    """SpRAy clusters and relevance masses of the ReLU'd map of the predicted class, per true class
    (heatlens.explain.shortcut), clustered on rank 0 after the gather; multi-label: of every positive
    finding's map, per finding. Runs on each method of `explain.methods`.

    Logs `xai/shortcut/<Class>/{outside_mass,border_mass,n_clusters,flag}` (outside_mass only when the
    dataset has `anatomy` masks), `xai/shortcut/flagged_classes`, `figures/shortcut/<Class>.png` and
    `explain/shortcut.npz` (ids, index, labels, cluster, suspect); other methods the same under
    `xai/<method>/shortcut/...`, `figures/methods/<method>/shortcut/` and `explain/methods/<method>/`.
    """

    name = "shortcut"

    def __init__(self, anatomy: str | None = "lung", examples: int = 3, **settings: Any) -> None:
        try:
            self.settings = shortcut.AuditSettings(**settings)
        except (TypeError, ExplainError) as err:  # an unknown key, or a value out of range
            raise ExplainCallbackError(f"explain.callbacks.shortcut: {err}") from None
        if examples < 0:
            raise ExplainCallbackError(f"explain.callbacks.shortcut.examples={examples}: must be >= 0")
        self.anatomy = anatomy
        self.examples = examples

    def explain(self, sample: ExplainedSample) -> Findings | None:
        return each_method(sample.step_methods, lambda method: self._explain_method(sample, method))

    def _explain_method(self, sample: ExplainedSample, method: str) -> Findings | None:
        rows = sample.gathered_maps(method, "prediction")
        if rows is None or not len(rows.index):
            return None
        heatmaps = np.maximum(rows.maps, 0)
        masks = rows.masks.get(self.anatomy) if self.anatomy else None
        audit = shortcut.audit_classes(heatmaps, rows.groups, len(sample.class_names), masks=masks,
                                       settings=self.settings)
        metrics: dict[str, float] = {"xai/shortcut/flagged_classes": float(audit.flagged_classes)}
        figures = {}
        images = rows.thumbnails.astype(np.float32) / 255.0
        for c, (name, result) in enumerate(zip(sample.class_names, audit.classes)):
            if not result.n_images:
                continue
            prefix = f"xai/shortcut/{name}"
            if masks is not None:
                metrics[f"{prefix}/outside_mass"] = result.outside_mass
            metrics |= {f"{prefix}/border_mass": result.border_mass, f"{prefix}/n_clusters": float(result.n_clusters),
                        f"{prefix}/flag": float(result.flag)}
            members = np.flatnonzero(rows.groups == c)
            figures[f"figures/shortcut/{slug(name)}.png"] = partial(
                shortcut_figure, result, images[members], heatmaps[members], name, titles=rows.ids[members],
                examples=self.examples, settings=self.settings, map_name="Grad-CAM" if method == "gradcam" else method)
        arrays = {"ids": rows.ids, "index": rows.index, "labels": rows.groups, "cluster": audit.cluster,
                  "suspect": audit.suspect, "class_names": np.asarray(sample.class_names)}
        if sample.multilabel:
            arrays["findings"] = rows.classes
        return per_method(Findings(metrics=metrics, figures=figures, arrays={"explain/shortcut.npz": arrays}),
                          method, sample.methods)
