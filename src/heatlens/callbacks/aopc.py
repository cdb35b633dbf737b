"""AOPC of every chosen explainer's heatmaps: MoRF, LeRF and random region perturbation of the explained images."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings, each_method, per_method
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import perturbation as perturb
from heatlens.plots import explain as plots

ORDERS = perturb.ORDERS


class AopcCallback(ExplanationCallback):
    """Perturbation curves for every explained target, in three orders, and their AOPC, per method.

    Multi-class: each image explains its predicted class with the raw Grad-CAM map (so LeRF really
    removes the least relevant regions first). Multi-label: every positive finding of an image is
    explained with its own map and scored by its sigmoid (`score: prob` becomes `sigmoid`; `correct_only`
    keeps findings the model detects, probability > 0.5). The noise of image i is seeded by `seed + i`
    (its test-set position): results do not depend on batch size or on how ranks share the test set.
    Logs `xai/aopc_{morf,lerf,random}`, `xai/aopc_morf/<Class>` (by true class, or finding), the curve
    figure and `explain/aopc.npz`; every other method of `explain.methods` the same under
    `xai/<method>/aopc/...` (and Grad-CAM too when others are chosen).
    """

    name = "aopc"

    def __init__(self, region_size: int = 8, perturbation: str = "gaussian_noise", sigma: float = 0.1,
                 correct_only: bool = True, steps: int | None = None, score: str = "prob", seed: int = 0,
                 batch_size: int | None = None) -> None:
        if perturbation not in perturb.PERTURBATIONS:
            raise ExplainCallbackError(
                f"explain.aopc.perturbation={perturbation!r}: choose one of {', '.join(perturb.PERTURBATIONS)}")
        if score not in perturb.SCORES:
            raise ExplainCallbackError(f"explain.aopc.score={score!r}: choose one of {', '.join(perturb.SCORES)}")
        if region_size < 1:
            raise ExplainCallbackError(f"explain.aopc.region_size={region_size}: must be a positive number of px")
        if sigma < 0:
            raise ExplainCallbackError(f"explain.aopc.sigma={sigma}: must be >= 0")
        self.options = dict(region_size=region_size, perturbation=perturbation, sigma=sigma, steps=steps,
                            score=score, batch_size=batch_size, correct_only=correct_only)
        self.seed = seed

    def explain(self, sample: ExplainedSample) -> Findings | None:
        return each_method(sample.step_methods, lambda method: self._explain_method(sample, method))

    def _explain_method(self, sample: ExplainedSample, method: str) -> Findings | None:
        targets = sample.targets("prediction")
        explained = sample.method_maps(method, "prediction")
        options = dict(self.options)
        if sample.multilabel and options["score"] == "prob":
            options["score"] = "sigmoid"
        curves: dict[str, list[torch.Tensor]] = {order: [] for order in ORDERS}
        for part in sample.target_batches(targets, f"explain: AOPC ({method})"):
            heatmaps = torch.from_numpy(explained[part.selected])
            for row, position in enumerate(part.positions):
                image = part.images[row:row + 1]
                truth = None if sample.multilabel else part.labels[row:row + 1]
                for order in ORDERS:
                    curves[order].append(perturb.perturbation_curves(
                        sample.net, image, heatmaps[row:row + 1], int(part.classes[row]), order=order,
                        seed=self.seed + int(position), labels=truth, **options))
        rows = {f"curves_{order}": torch.cat(parts) if parts else torch.empty(0) for order, parts in curves.items()}
        cams = sample.cams
        rows |= {"labels": cams.labels[targets.rows], "predictions": cams.predictions[targets.rows]}
        gathered = sample.gather_targets(targets, rows)
        if gathered is None or not len(gathered["index"]):
            return None
        return per_method(self._findings(sample.class_names, gathered, method), method, sample.methods)

    @staticmethod
    def _findings(class_names: list[str], gathered: dict[str, np.ndarray], method: str = "gradcam") -> Findings:
        curves = {order: gathered[f"curves_{order}"] for order in ORDERS}
        values = {order: perturb.aopc(torch.from_numpy(c)) for order, c in curves.items()}
        metrics = {f"xai/aopc_{order}": value for order, value in values.items()}
        per_image = {order: perturb.aopc_per_image(torch.from_numpy(c)).numpy() for order, c in curves.items()}
        for c, name in enumerate(class_names):
            chosen = per_image["morf"][gathered["groups"] == c]
            chosen = chosen[~np.isnan(chosen)]
            metrics[f"xai/aopc_morf/{name}"] = float(chosen.mean()) if len(chosen) else float("nan")
        arrays = dict(ids=gathered["ids"], index=gathered["index"], labels=gathered["labels"],
                      predictions=gathered["predictions"], **{f"curves_{o}": curves[o] for o in ORDERS},
                      **{f"aopc_{o}": per_image[o] for o in ORDERS}, class_names=np.asarray(class_names))
        if gathered["labels"].ndim == 2:  # multi-label: one row per (image, positive finding)
            arrays["findings"] = gathered["classes"]
        figure = partial(plots.perturbation_curves_figure, curves, values,
                         map_name=None if method == "gradcam" else method, groups=gathered["groups"],
                         class_names=class_names)
        return Findings(metrics=metrics, figures={"figures/aopc/curves.png": figure},
                        arrays={"explain/aopc.npz": arrays})
