"""AOPC of the Grad-CAM heatmaps: MoRF, LeRF and random region perturbation of the test images."""

from __future__ import annotations

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback
from heatlens.callbacks.context import ExplainContext
from heatlens.callbacks.distributed import gather_by_index
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

    def __init__(self, max_images: int | None = 256, region_size: int = 8, perturbation: str = "gaussian_noise",
                 sigma: float = 0.1, correct_only: bool = True, steps: int | None = None, score: str = "prob",
                 seed: int = 0, batch_size: int | None = None) -> None:
        self.max_images = self.check_max_images(max_images, "explain.max_images")
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

    def explain(self, context: ExplainContext) -> None:
        mine = context.mine(self.max_images)
        curves: dict[str, list[torch.Tensor]] = {order: [] for order in ORDERS}
        predictions, labels = [], []
        for batch in context.batches(mine, "explain: AOPC"):
            maps, logits, _ = context.cams(batch.index)
            predicted = logits.argmax(axis=1)
            heatmaps = torch.from_numpy(maps[np.arange(len(maps)), predicted])
            for row, position in enumerate(batch.index):
                image = batch.images[row:row + 1]
                for order in ORDERS:
                    curves[order].append(perturb.perturbation_curves(
                        context.net, image, heatmaps[row:row + 1], int(predicted[row]), order=order,
                        seed=self.seed + int(position), labels=batch.labels[row:row + 1], **self.options))
            predictions.append(predicted)
            labels.append(batch.labels.numpy())
        rows = {f"curves_{order}": torch.cat(parts) if parts else torch.empty(0) for order, parts in curves.items()}
        rows["predictions"] = np.concatenate(predictions) if predictions else np.empty(0, np.int64)
        rows["labels"] = np.concatenate(labels) if labels else np.empty(0, np.int64)
        gathered = gather_by_index(mine, rows)
        if gathered is not None:
            self._log(context, gathered)

    def _log(self, context: ExplainContext, gathered: dict[str, np.ndarray]) -> None:
        curves = {order: gathered[f"curves_{order}"] for order in ORDERS}
        if not len(gathered["index"]):
            return
        values = {order: perturb.aopc(torch.from_numpy(c)) for order, c in curves.items()}
        metrics = {f"xai/aopc_{order}": value for order, value in values.items()}
        per_image = {order: perturb.aopc_per_image(torch.from_numpy(c)).numpy() for order, c in curves.items()}
        for c, name in enumerate(context.class_names):
            chosen = per_image["morf"][gathered["labels"] == c]
            chosen = chosen[~np.isnan(chosen)]
            metrics[f"xai/aopc_morf/{name}"] = float(chosen.mean()) if len(chosen) else float("nan")
        context.run.log_metrics(metrics)
        context.run.log_figure(plots.perturbation_curves_figure(curves, values), "figures/aopc/curves.png")
        context.run.log_arrays(
            "explain/aopc.npz", ids=context.ids(gathered["index"]), index=gathered["index"],
            labels=gathered["labels"], predictions=gathered["predictions"],
            **{f"curves_{o}": curves[o] for o in ORDERS}, **{f"aopc_{o}": per_image[o] for o in ORDERS},
            class_names=np.asarray(context.class_names),
        )
