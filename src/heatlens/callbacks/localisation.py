"""Does Grad-CAM point at the ground truth? Localisation scores against every mask kind of the dataset."""

from __future__ import annotations

import logging

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import cam, localisation

log = logging.getLogger(__name__)

TARGETS = ("label", "prediction")
# A heatmap spreading its mass evenly: its relevance mass inside a mask is the mask's area share.
UNIFORM = "uniform_relevance_mass_accuracy"


class LocalisationCallback(ExplanationCallback):
    """Scores the ReLU'd Grad-CAM map of the `target` class (true label by default) against each mask kind.

    Logs `xai/loc/<kind>/<score>` (mean over images whose mask is not empty) for every score of
    `heatlens.explain.localisation.SCORES`, plus `xai/loc/<kind>/uniform_relevance_mass_accuracy`, the
    same score for a uniform heatmap (the chance level), and `explain/localisation.npz`.
    """

    name = "localisation"

    def __init__(self, target: str = "label", top_k: float = 0.1) -> None:
        if target not in TARGETS:
            raise ExplainCallbackError(f"localisation target={target!r}: choose one of {', '.join(TARGETS)}")
        if not 0 < top_k <= 1:
            raise ExplainCallbackError(f"localisation top_k={top_k}: a fraction of the pixels in (0, 1]")
        self.target = target
        self.top_k = top_k

    def explain(self, sample: ExplainedSample) -> Findings | None:
        kinds = sample.mask_kinds
        if not kinds:
            log.info("localisation: the dataset has no masks; nothing to score")
            return None
        cams = sample.cams
        explained = cams.maps_of(cams.labels if self.target == "label" else cams.predictions)
        names = [f"{kind}/{score}" for kind in kinds for score in (*localisation.SCORES, UNIFORM)]
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for batch in sample.batches("explain: localisation"):
            heat = cam.relu(torch.from_numpy(explained[batch.rows]))
            for kind in kinds:
                masks = batch.masks[kind]
                scores = localisation.localisation_scores(heat, masks, top_k=self.top_k)
                area = masks.flatten(1).double().mean(dim=1).numpy()
                scores[UNIFORM] = np.where(area > 0, area, np.nan)
                for score, values in scores.items():
                    parts[f"{kind}/{score}"].append(values)
        rows = {name: np.concatenate(parts[name]) if parts[name] else np.empty(0) for name in names}
        gathered = sample.gather({"labels": cams.labels, **rows})
        if gathered is None or not len(gathered["index"]):
            return None
        metrics = {}
        for name in names:
            finite = gathered[name][~np.isnan(gathered[name])]
            metrics[f"xai/loc/{name}"] = float(finite.mean()) if len(finite) else float("nan")
        per_score = {name.replace("/", "__"): gathered[name] for name in names}
        return Findings(metrics=metrics, arrays={"explain/localisation.npz": dict(
            ids=gathered["ids"], index=gathered["index"], labels=gathered["labels"], **per_score)})
