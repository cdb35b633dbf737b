"""Does each explainer point at the ground truth? Localisation scores against every mask kind of the dataset."""

from __future__ import annotations

import logging

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings, each_method, per_method
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import cam, localisation, stats

log = logging.getLogger(__name__)

TARGETS = ("label", "prediction")
# A heatmap spreading its mass evenly: its relevance mass inside a mask is the mask's area share.
UNIFORM = "uniform_relevance_mass_accuracy"
BOX = "box"  # the mask kind of bounding boxes (ChestX-ray14, VinDr-CXR): scored with box IoU too


class LocalisationCallback(ExplanationCallback):
    """Scores the ReLU'd map of the `target` class (true label by default) of every method against each mask
    kind; multi-label: the map of every positive finding against that finding's mask channel.

    Logs `xai/loc/<kind>/<score>` (mean over explained targets whose mask is not empty) for every score of
    `heatlens.explain.localisation.SCORES`, plus `xai/loc/<kind>/uniform_relevance_mass_accuracy`, the
    same score for a uniform heatmap (the chance level), and `explain/localisation.npz`. For `box` masks,
    also ChestX-ray8's `box_iou` and `hit_iou_<T>` (heatlens.explain.localisation.box_scores).
    Multi-label also logs every score per finding, `xai/loc/<kind>/<score>/<Finding>`. Every other method
    of `explain.methods` logs the same under `xai/<method>/loc/...`.
    """

    name = "localisation"

    def __init__(self, target: str = "label", top_k: float = 0.1, box_threshold: float = 0.5) -> None:
        if target not in TARGETS:
            raise ExplainCallbackError(f"localisation target={target!r}: choose one of {', '.join(TARGETS)}")
        if not 0 < top_k <= 1:
            raise ExplainCallbackError(f"localisation top_k={top_k}: a fraction of the pixels in (0, 1]")
        if not 0 <= box_threshold <= 1:
            raise ExplainCallbackError(f"localisation box_threshold={box_threshold}: a fraction of the map's "
                                       "range in [0, 1]")
        self.target = target
        self.top_k = top_k
        self.box_threshold = box_threshold

    def explain(self, sample: ExplainedSample) -> Findings | None:
        if not sample.mask_kinds:
            log.info("localisation: the dataset has no masks; nothing to score")
            return None
        return each_method(sample.step_methods, lambda method: self._explain_method(sample, method))

    def _scores(self, kind: str) -> tuple[str, ...]:
        boxes = ("box_iou", *(f"hit_iou_{t:g}" for t in localisation.IOU_THRESHOLDS)) if kind == BOX else ()
        return (*localisation.SCORES, UNIFORM, *boxes)

    def _explain_method(self, sample: ExplainedSample, method: str) -> Findings | None:
        kinds = sample.mask_kinds
        targets = sample.targets(self.target)
        explained = sample.method_maps(method, self.target)
        names = [f"{kind}/{score}" for kind in kinds for score in self._scores(kind)]
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for part in sample.target_batches(targets, f"explain: localisation ({method})"):
            heat = cam.relu(torch.from_numpy(explained[part.selected]))
            for kind in kinds:
                masks = part.masks[kind]
                scores = localisation.localisation_scores(heat, masks, top_k=self.top_k)
                area = masks.flatten(1).double().mean(dim=1).numpy()
                scores[UNIFORM] = np.where(area > 0, area, np.nan)
                if kind == BOX:
                    scores |= localisation.box_scores(heat, masks, threshold=self.box_threshold)
                for score, values in scores.items():
                    parts[f"{kind}/{score}"].append(values)
        rows = {name: np.concatenate(parts[name]) if parts[name] else np.empty(0) for name in names}
        gathered = sample.gather_targets(targets, {"labels": sample.cams.labels[targets.rows], **rows})
        if gathered is None or not len(gathered["index"]):
            return None
        metrics = {f"xai/loc/{name}": stats.finite_mean(gathered[name]) for name in names}
        if sample.multilabel:
            metrics |= {f"xai/loc/{name}/{finding}": stats.finite_mean(gathered[name][gathered["groups"] == k])
                        for k, finding in enumerate(sample.class_names) for name in names}
        per_score = {name.replace("/", "__"): gathered[name] for name in names}
        arrays = dict(ids=gathered["ids"], index=gathered["index"], labels=gathered["labels"], **per_score)
        if sample.multilabel:
            arrays["findings"] = gathered["classes"]
        return per_method(Findings(metrics=metrics, arrays={"explain/localisation.npz": arrays}), method,
                          sample.methods)
