"""Which explanation can you trust: every chosen explainer scored with every metric on the same images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.distributed import gather_by_index
from heatlens.callbacks.sample import ExplainedSample, mask_of
from heatlens.explain import registry, scoring
from heatlens.explain.errors import ExplainError
from heatlens.plots import explainers as plots


class ExplainersCallback(ExplanationCallback):
    """Scores every method of `methods` (heatlens.explain.registry names) on the first `num_images`
    images of the sample, explaining each image's predicted class, with every metric of
    heatlens.explain.scoring: AOPC, localisation against each mask kind, full-model randomisation, and
    every metric of heatlens.explain.metrics (options per metric in `metric_options`).

    Logs `xai/method/<method>/<metric>` (mean over images) and `xai/method/<method>/mean_rank`,
    `reports/explainers.json` (per method and metric: estimate, 95 % bootstrap interval over images,
    rank), `figures/explainers/leaderboard.png`, `figures/explainers/examples.png` (the first
    `examples` images under every method) and `explain/explainers.npz` (per-image values);
    `time/explainers_<method>_s` per method. Each rank scores its own images batch by batch; image
    noise is seeded by `seed` + the image's test position, so values do not depend on the batch size
    or the number of ranks (SmoothGrad's noise, seeded per call, is the one exception).
    """

    name = "explainers"

    def __init__(self, methods: Sequence[str] = ("gradcam",), num_images: int = 32, examples: int = 4,
                 region_size: int = 8, perturbation: str = "gaussian_noise", sigma: float = 0.1,
                 steps: int | None = None, seed: int = 0,
                 metric_options: Mapping[str, Mapping] | None = None) -> None:
        try:
            self.methods = registry.check_methods(list(methods), "explain.callbacks.explainers.methods")
        except ExplainError as error:
            raise ExplainCallbackError(str(error)) from None
        if num_images < 1 or examples < 0:
            raise ExplainCallbackError(f"explainers num_images={num_images}, examples={examples}: "
                                       "num_images must be >= 1 and examples >= 0")
        if region_size < 1:
            raise ExplainCallbackError(f"explainers region_size={region_size}: must be a positive number of px")
        unknown = sorted(set(metric_options or {}) - set(scoring.extra_metrics()))
        if unknown:
            raise ExplainCallbackError(f"explainers metric_options: unknown metric(s) {', '.join(unknown)}; "
                                       f"choose from {', '.join(scoring.extra_metrics())}")
        self.metric_options = {name: dict(o) for name, o in (metric_options or {}).items()}
        self.num_images = num_images
        self.examples = examples
        self.options = scoring.Options(region_size=region_size, perturbation=perturbation, sigma=sigma,
                                       steps=steps, seed=seed)

    def explain(self, sample: ExplainedSample) -> Findings | None:
        sample.net.eval()  # PostFitExplanations restores the caller's modes afterwards
        mine = np.intersect1d(sample.positions, sample.first(self.num_images))
        parts: dict[str, list[np.ndarray]] = {}
        labels, predictions = [], []
        for batch in sample.batches("explain: explainers", positions=mine):
            with torch.no_grad():
                logits = sample.net(batch.images)
            targets = logits.argmax(dim=1).cpu()
            # each target's own mask channel where a kind has one per finding (multi-label)
            masks = {k: mask_of(m, targets, len(sample.class_names))[:, None] for k, m in batch.masks.items()}
            labels.append(batch.labels.numpy())
            predictions.append(targets.numpy())
            for method in self.methods:
                with sample.timer.stage(f"explainers_{method}"):
                    fn = registry.explainer(method, seed=self.options.seed)
                    scores = scoring.score_batch(sample.net, batch.images, targets, fn(sample.net, batch.images,
                                                 targets), fn, masks, self.options, batch.index,
                                                 self.metric_options)
                for metric, values in scores.items():
                    parts.setdefault(f"{method}/{metric}", []).append(values)
        directions = scoring.metric_directions(sample.mask_kinds)
        names = [f"{method}/{metric}" for method in self.methods for metric in directions]
        rows = {name: np.concatenate(parts[name]) if name in parts else np.empty(0) for name in names}
        rows |= {"labels": np.concatenate(labels) if labels else np.empty(0, np.int64),
                 "predictions": np.concatenate(predictions) if predictions else np.empty(0, np.int64)}
        gathered = gather_by_index(mine, rows)
        if gathered is None or not len(gathered["index"]):
            return None
        per_image = {m: {k: gathered[f"{m}/{k}"] for k in directions} for m in self.methods}
        board = scoring.leaderboard(per_image, directions, seed=self.options.seed)
        metrics = {f"xai/method/{m}/{k}": board["scores"][m][k]["estimate"] for m in self.methods for k in directions}
        metrics |= {f"xai/method/{m}/mean_rank": board["mean_rank"][m] for m in self.methods}
        figures = {"figures/explainers/leaderboard.png": plots.leaderboard_figure(board)}
        if self.examples:
            figures["figures/explainers/examples.png"] = self._examples(sample)
        report = {"num_images": int(len(gathered["index"])), "options": asdict(self.options),
                  "metric_options": self.metric_options, **board}
        arrays = {"ids": sample.ids_of(gathered["index"]), "index": gathered["index"], "labels": gathered["labels"],
                  "predictions": gathered["predictions"], **{n.replace("/", "__"): gathered[n] for n in names}}
        return Findings(metrics=metrics, figures=figures, documents={"reports/explainers.json": report},
                        arrays={"explain/explainers.npz": arrays})

    def _examples(self, sample: ExplainedSample):
        """Rank 0: the first `examples` images of the sample under every method."""
        index = sample.first(self.examples)
        images, labels = sample.load(index)
        with torch.no_grad():
            targets = sample.net(images).argmax(dim=1).cpu()
        maps = {m: registry.explain(m, sample.net, images, targets, seed=self.options.seed).numpy()
                for m in self.methods}
        names = sample.class_names
        truths = ([", ".join(names[k] for k in np.flatnonzero(y == 1)) or "no finding" for y in labels]
                  if labels.ndim == 2 else [names[y] for y in labels])  # multi-label: the positive findings
        titles = [f"{t} → {names[p]}" for t, p in zip(truths, targets.tolist())]
        return plots.examples_figure(sample.denormalize(images).cpu().numpy(), maps, titles)
