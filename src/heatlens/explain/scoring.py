"""Score explainers side by side: per-image metric values, bootstrap intervals and ranks.

`score_batch` runs every metric on one batch for one explainer and returns per-image values; the
caller concatenates batches (and ranks) and hands them to `leaderboard`. Besides the built-in metrics
below, every entry of `heatlens.explain.metrics.METRICS` (ROAD, insertion / deletion, faithfulness
correlation, random-logit, eMPRT, max-sensitivity, sparseness, entropy) is scored, with its defaults
unless `metric_options` says otherwise; metrics that take a `seed` run image by image with
seed + the image's test position, so no value depends on batching or on the number of ranks.

Built-in metrics (per image):
  aopc_morf           faithfulness, higher better: MoRF AOPC of the target probability (perturbation.py)
  aopc_lerf           faithfulness, lower better: LeRF AOPC (removing the least relevant regions first)
  <kind>_mass         localisation, higher better: relevance mass inside the mask (localisation.py)
  <kind>_rank         localisation, higher better: relevance rank accuracy
  <kind>_pointing     localisation, higher better: pointing game
  randomisation_corr  randomisation, lower better: Spearman correlation of |map| of the trained model with
                      |map| once every layer is re-initialised (the last step of Adebayo et al.'s cascade)
"""

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from heatlens.explain import localisation, perturbation, sanity
from heatlens.explain.errors import ExplainError

ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
BUILTIN = {  # name -> (family, higher_is_better)
    "aopc_morf": ("faithfulness", True),
    "aopc_lerf": ("faithfulness", False),
    "randomisation_corr": ("randomisation", False),
}
LOCALISATION = {"mass": "relevance_mass_accuracy", "rank": "relevance_rank_accuracy", "pointing": "pointing_game"}


@dataclass(frozen=True)
class Options:
    region_size: int = 8  # px side of the AOPC squares
    perturbation: str = "gaussian_noise"
    sigma: float = 0.1
    steps: int | None = None  # cap on AOPC steps; None = every region
    batch_size: int | None = None  # forwards per chunk of the perturbation curves
    seed: int = 0
    score: str = "prob"  # the target's output the faithfulness metrics read: "sigmoid" for multi-label findings


def extra_metrics() -> dict:
    """heatlens.explain.metrics.METRICS: name -> Metric(fn, family, higher_is_better, needs)."""
    from heatlens.explain.metrics import METRICS

    return dict(METRICS)


def metric_directions(mask_kinds: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """name -> (family, higher_is_better) of every metric scored for a dataset with these mask kinds."""
    out = {name: spec for name, spec in BUILTIN.items()}
    out |= {f"{kind}_{short}": ("localisation", True) for kind in mask_kinds for short in LOCALISATION}
    out |= {name: (metric.family, bool(metric.higher_is_better)) for name, metric in extra_metrics().items()}
    return out


def _abs_spearman(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return sanity.rank_correlation(a.abs(), b.abs())


def _fully_randomised(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, explain_fn: ExplainFn,
                      seed: int) -> np.ndarray:
    """Per-image Spearman of |map| before and after re-initialising every layer (sanity's cascade, last step)."""
    seen: list[torch.Tensor] = []

    def recording(net: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(explain_fn(net, x, t).detach().float().cpu())
        return seen[-1]

    last = sanity.parameter_layers(model)[-1]
    sanity.cascading_randomisation(model, images, targets, recording, seed=seed, layers=[last])
    return sanity.rank_correlation(seen[0].abs(), seen[-1].abs())


def score_batch(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, heatmaps: torch.Tensor,
                explain_fn: ExplainFn, masks: Mapping[str, torch.Tensor], options: Options = Options(),
                index: Sequence[int] | None = None,
                metric_options: Mapping[str, Mapping] | None = None) -> dict[str, np.ndarray]:
    """{metric: (B,) float64} for one explainer's `heatmaps` (B, h, w) of `targets` on `images`.

    Image i's random draws are seeded by options.seed + index[i] (`index`: the images' test positions,
    default 0..B-1), so values do not depend on batching or on how ranks share images; the fully
    randomised model of `randomisation_corr` is seeded by options.seed alone. AOPC and every metric that
    reads the softmax probability by default read `options.score` instead. `metric_options` maps a
    METRICS name to keyword options of its function (e.g. {"max_sensitivity": {"nr_samples": 5}}).
    """
    if heatmaps.ndim != 3 or len(heatmaps) != len(images):
        raise ExplainError(f"heatmaps must be (B, h, w) with B={len(images)}, got {tuple(heatmaps.shape)}")
    seeds = [options.seed + int(i) for i in (range(len(images)) if index is None else index)]
    targets = targets.cpu().long()
    out: dict[str, np.ndarray] = {}
    for order in ("morf", "lerf"):
        curves = torch.cat([perturbation.perturbation_curves(
            model, images[i:i + 1], heatmaps[i:i + 1].float(), targets[i:i + 1], region_size=options.region_size,
            order=order, perturbation=options.perturbation, sigma=options.sigma, seed=seed, steps=options.steps,
            batch_size=options.batch_size, score=options.score) for i, seed in enumerate(seeds)])
        out[f"aopc_{order}"] = perturbation.aopc_per_image(curves).double().numpy()
    for kind, kind_masks in masks.items():
        scores = localisation.localisation_scores(heatmaps.clamp_min(0), kind_masks)
        out |= {f"{kind}_{short}": scores[name] for short, name in LOCALISATION.items()}
    out["randomisation_corr"] = _fully_randomised(model, images, targets, explain_fn, options.seed)
    metric_options = metric_options or {}
    unknown = sorted(set(metric_options) - set(extra_metrics()))
    if unknown:
        raise ExplainError(f"metric options for unknown metric(s) {', '.join(unknown)}; "
                           f"metrics: {', '.join(extra_metrics())}")
    for name, metric in extra_metrics().items():
        args = {"maps": (heatmaps,), "model": (model, images, targets, heatmaps),
                "explainer": (model, images, targets, heatmaps, explain_fn)}[metric.needs]
        kwargs = dict(metric_options.get(name, {}))
        parameters = inspect.signature(metric.fn).parameters
        # Metrics that read the softmax probability by default read options.score (a logit stays a logit).
        if "score" in parameters and parameters["score"].default == "prob":
            kwargs.setdefault("score", options.score)
        if "seed" in parameters:
            values = torch.cat([metric.fn(*(a[i:i + 1] if isinstance(a, torch.Tensor) else a for a in args),
                                          seed=seed, **kwargs) for i, seed in enumerate(seeds)])
        else:
            values = metric.fn(*args, **kwargs)
        out[name] = torch.as_tensor(values).double().cpu().numpy().reshape(len(images))
    return out


def bootstrap_interval(values: np.ndarray, resamples: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of the finite values and its percentile bootstrap interval over images."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = finite[rng.integers(0, len(finite), (resamples, len(finite)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(finite.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def leaderboard(per_image: Mapping[str, Mapping[str, np.ndarray]], directions: Mapping[str, tuple[str, bool]],
                seed: int = 0) -> dict:
    """Per method and metric: estimate, 95 % bootstrap interval, rank (1 = best; ties share the best rank),
    plus each method's mean rank over the metrics it has a finite value for.

    `per_image` is {method: {metric: (n,) values}} over the same images for every method.
    """
    methods = list(per_image)
    metrics = [m for m in directions if any(m in per_image[method] for method in methods)]
    table = {method: {} for method in methods}
    for metric in metrics:
        family, higher = directions[metric]
        for method in methods:
            mean, low, high = bootstrap_interval(per_image[method].get(metric, np.empty(0)), seed=seed)
            table[method][metric] = {"estimate": mean, "low": low, "high": high, "family": family,
                                     "higher_is_better": higher}
        estimates = np.array([table[m][metric]["estimate"] for m in methods])
        signed = np.where(np.isfinite(estimates), -estimates if higher else estimates, np.inf)
        for method, value, estimate in zip(methods, signed, estimates):
            table[method][metric]["rank"] = int((signed < value).sum()) + 1 if np.isfinite(estimate) else None
    mean_rank = {}
    for method in methods:
        ranks = [table[method][m]["rank"] for m in metrics if table[method][m]["rank"] is not None]
        mean_rank[method] = float(np.mean(ranks)) if ranks else float("nan")
    order = sorted(methods, key=lambda m: (np.isnan(mean_rank[m]), mean_rank[m]))
    return {"methods": order, "metrics": metrics, "mean_rank": mean_rank, "scores": table}
