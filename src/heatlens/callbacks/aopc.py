"""AOPC of the Grad-CAM heatmaps: MoRF, LeRF and random region perturbation of the explained images."""

from __future__ import annotations

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import perturbation as perturb
from heatlens.plots import explain as plots

ORDERS = perturb.ORDERS


class AopcCallback(ExplanationCallback):
    """Perturbation curves for every explained image, in three orders, and their AOPC.

    Each image explains its predicted class with the raw Grad-CAM map (so LeRF really removes the
    least relevant regions first). The noise of image i is seeded by `seed + i` (its test-set
    position): results do not depend on batch size or on how ranks share the test set.
    Logs `xai/aopc_{morf,lerf,random}`, `xai/aopc_morf/<Class>` (by true class), the curve figure
    and `explain/aopc.npz`.
    """

    name = "aopc"

    def __init__(self, region_size: int = 8, perturbation: str = "gaussian_noise", sigma: float = 0.1,
                 correct_only: bool = True, steps: int | None = None, score: str = "prob", seed: int = 0,
                 batch_size: int | None = None) -> None:
        if perturbation not in perturb.PERTURBATIONS:
            raise ExplainCallbackError(
                f"explain.aopc.perturbation={perturbation!r}: choose one of {', '.join(perturb.PERTURBATIONS)}")
        if score not in perturb.SCORES:
            raise ExplainCallbackError(f"explain.aopc.score={score!r}: choose prob or logit")
        if region_size < 1:
            raise ExplainCallbackError(f"explain.aopc.region_size={region_size}: must be a positive number of px")
        if sigma < 0:
            raise ExplainCallbackError(f"explain.aopc.sigma={sigma}: must be >= 0")
        self.options = dict(region_size=region_size, perturbation=perturbation, sigma=sigma, steps=steps,
                            score=score, batch_size=batch_size, correct_only=correct_only)
        self.seed = seed

    def explain(self, sample: ExplainedSample) -> Findings | None:
        cams = sample.cams
        explained = cams.maps_of(cams.predictions)
        curves: dict[str, list[torch.Tensor]] = {order: [] for order in ORDERS}
        for batch in sample.batches("explain: AOPC"):
            predicted = cams.predictions[batch.rows]
            heatmaps = torch.from_numpy(explained[batch.rows])
            for row, position in enumerate(batch.index):
                image = batch.images[row:row + 1]
                for order in ORDERS:
                    curves[order].append(perturb.perturbation_curves(
                        sample.net, image, heatmaps[row:row + 1], int(predicted[row]), order=order,
                        seed=self.seed + int(position), labels=batch.labels[row:row + 1], **self.options))
        rows = {f"curves_{order}": torch.cat(parts) if parts else torch.empty(0) for order, parts in curves.items()}
        rows |= {"labels": cams.labels, "predictions": cams.predictions}
        gathered = sample.gather(rows)
        if gathered is None or not len(gathered["index"]):
            return None
        return self._findings(sample.class_names, gathered)

    @staticmethod
    def _findings(class_names: list[str], gathered: dict[str, np.ndarray]) -> Findings:
        curves = {order: gathered[f"curves_{order}"] for order in ORDERS}
        values = {order: perturb.aopc(torch.from_numpy(c)) for order, c in curves.items()}
        metrics = {f"xai/aopc_{order}": value for order, value in values.items()}
        per_image = {order: perturb.aopc_per_image(torch.from_numpy(c)).numpy() for order, c in curves.items()}
        for c, name in enumerate(class_names):
            chosen = per_image["morf"][gathered["labels"] == c]
            chosen = chosen[~np.isnan(chosen)]
            metrics[f"xai/aopc_morf/{name}"] = float(chosen.mean()) if len(chosen) else float("nan")
        arrays = dict(ids=gathered["ids"], index=gathered["index"], labels=gathered["labels"],
                      predictions=gathered["predictions"], **{f"curves_{o}": curves[o] for o in ORDERS},
                      **{f"aopc_{o}": per_image[o] for o in ORDERS}, class_names=np.asarray(class_names))
        return Findings(metrics=metrics, figures={"figures/aopc/curves.png": plots.perturbation_curves_figure(
            curves, values)}, arrays={"explain/aopc.npz": arrays})
