"""Which explanation can you trust: every chosen explainer scored with every metric on the same images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from functools import partial

import numpy as np
import torch

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.distributed import gather_by_index
from heatlens.callbacks.rows import Targets, mask_of
from heatlens.callbacks.sample import ExplainedSample
from heatlens.explain import registry, scoring
from heatlens.explain.errors import ExplainError
from heatlens.plots import explainers as plots


class ExplainersCallback(ExplanationCallback):
    """Scores every method of `methods` (heatlens.explain.registry names) on the first `num_images`
    images of the sample, explaining each image's predicted class (multi-label: each positive finding,
    scored by its sigmoid against its own mask channel), with every metric of
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
        if sample.multilabel:
            rows, gather = self._score_findings(sample)
        else:
            rows, gather = self._score_predictions(sample)
        directions = scoring.metric_directions(sample.mask_kinds)
        names = [f"{method}/{metric}" for method in self.methods for metric in directions]
        gathered = gather(rows)
        if gathered is None or not len(gathered["index"]):
            return None
        per_image = {m: {k: gathered[f"{m}/{k}"] for k in directions} for m in self.methods}
        board = scoring.leaderboard(per_image, directions, seed=self.options.seed)
        metrics = {f"xai/method/{m}/{k}": board["scores"][m][k]["estimate"] for m in self.methods for k in directions}
        metrics |= {f"xai/method/{m}/mean_rank": board["mean_rank"][m] for m in self.methods}
        figures = {"figures/explainers/leaderboard.png": partial(plots.leaderboard_figure, board)}
        if self.examples:
            figures["figures/explainers/examples.png"] = partial(self._examples, sample)
        report = {"num_images": int(len(np.unique(gathered["index"]))), "num_explained": int(len(gathered["index"])),
                  "options": asdict(self.options), "metric_options": self.metric_options, **board}
        arrays = {"ids": sample.ids_of(gathered["index"]), "index": gathered["index"], "labels": gathered["labels"],
                  "predictions": gathered["predictions"], **{n.replace("/", "__"): gathered[n] for n in names}}
        return Findings(metrics=metrics, figures=figures, documents={"reports/explainers.json": report},
                        arrays={"explain/explainers.npz": arrays})

    def _score(self, sample: ExplainedSample, images: torch.Tensor, targets: torch.Tensor,
               masks: Mapping[str, torch.Tensor], positions: np.ndarray, options: scoring.Options
               ) -> dict[str, np.ndarray]:
        """{"<method>/<metric>": (B,) values} of every method on one batch of (image, target) rows."""
        out = {}
        for method in self.methods:
            with sample.timer.stage(f"explainers_{method}"):
                fn = registry.explainer(method, seed=options.seed)
                scores = scoring.score_batch(sample.net, images, targets, fn(sample.net, images, targets), fn,
                                             masks, options, positions, self.metric_options)
            out |= {f"{method}/{metric}": values for metric, values in scores.items()}
        return out

    def _score_predictions(self, sample: ExplainedSample):
        """Multi-class: each of the first `num_images` images explained for its predicted class."""
        mine = np.intersect1d(sample.positions, sample.first(self.num_images))
        parts: dict[str, list[np.ndarray]] = {}
        for batch in sample.batches("explain: explainers", positions=mine):
            with torch.no_grad():
                targets = sample.net(batch.images).argmax(dim=1).cpu()
            masks = {k: mask_of(m, targets, len(sample.class_names))[:, None] for k, m in batch.masks.items()}
            scores = self._score(sample, batch.images, targets, masks, batch.index, self.options)
            for name, values in {**scores, "labels": batch.labels.numpy(), "predictions": targets.numpy()}.items():
                parts.setdefault(name, []).append(values)
        rows = {name: np.concatenate(values) for name, values in parts.items()}
        rows.setdefault("labels", np.empty(0, np.int64))
        rows.setdefault("predictions", np.empty(0, np.int64))
        return self._complete(sample, rows, 0), lambda r: gather_by_index(mine, r)

    def _score_findings(self, sample: ExplainedSample):
        """Multi-label: every positive finding of the first `num_images` images, explained and scored with
        that finding's sigmoid against that finding's own mask channel (as the AOPC step does)."""
        every = sample.targets("label")
        keep = np.isin(sample.positions[every.rows], sample.first(self.num_images))
        targets = Targets(every.rows[keep], every.classes[keep], every.groups[keep], every.keys[keep])
        options = replace(self.options, score="sigmoid")
        rows: dict[str, np.ndarray] = {}
        for part in sample.target_batches(targets, "explain: explainers"):
            masks = {k: m[:, None] for k, m in part.masks.items()}
            scores = self._score(sample, part.images, part.classes, masks, part.positions, options)
            for name, values in {**scores, "labels": part.labels.numpy(), "predictions": part.classes.numpy()}.items():
                rows.setdefault(name, np.zeros((len(targets.rows), *values.shape[1:]), values.dtype))
                rows[name][part.selected] = values
        rows.setdefault("labels", np.empty((len(targets.rows), len(sample.class_names)), np.float32))
        rows.setdefault("predictions", np.empty(len(targets.rows), np.int64))
        return self._complete(sample, rows, len(targets.rows)), lambda r: sample.gather_targets(targets, r)

    def _complete(self, sample: ExplainedSample, rows: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
        """Every method-metric column present (empty on a rank without rows), so every rank gathers the same names."""
        for method in self.methods:
            for metric in scoring.metric_directions(sample.mask_kinds):
                rows.setdefault(f"{method}/{metric}", np.full(count, np.nan) if count else np.empty(0))
        return rows

    def _examples(self, sample: ExplainedSample):
        """Rank 0: the first `examples` images of the sample under every method (computed only when drawn)."""
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
