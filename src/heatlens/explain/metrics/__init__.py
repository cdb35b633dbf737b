"""Explanation metrics: score how far a relevance map reflects what the model does (pure torch/numpy).

One module per family (faithfulness, randomisation, robustness, complexity); localisation lives in
`heatlens.explain.localisation`. Every metric returns one float32 score per image (a CPU tensor of B),
NaN where it is undefined for that image, so callers can bootstrap over images.

Interface (what callers loop over):
  needs="maps"            fn(maps)                                        complexity
  needs="model"           fn(model, images, targets, maps)                faithfulness
  needs="explainer"       fn(model, images, targets, maps, explainer)     randomisation, robustness
`maps` is (B, h, w) at any resolution (7x7 CAMs or full-resolution attributions); metrics that relate
maps to pixels resize them bilinearly to the image size (align_corners=False) inside. `explainer` is
`(model, images, targets) -> (B, h, w)`, e.g. `functools.partial(registry.explain, name)`. Metrics with
randomness take `seed` and draw from their own torch.Generator, never the global RNG.
Every keyword argument has a documented default in the function's docstring; see
docs/guides/explanation-metrics.md for definitions and the reference each one equals.
"""

from collections.abc import Callable
from dataclasses import dataclass

from heatlens.explain.metrics.complexity import entropy, sparseness
from heatlens.explain.metrics.faithfulness import (
    deletion_auc,
    faithfulness_correlation,
    insertion_auc,
    road_lerf,
    road_morf,
)
from heatlens.explain.metrics.randomisation import emprt, random_logit
from heatlens.explain.metrics.robustness import max_sensitivity

NEEDS = ("maps", "model", "explainer")


@dataclass(frozen=True)
class Metric:
    fn: Callable
    family: str  # faithfulness | randomisation | robustness | complexity
    higher_is_better: bool
    needs: str  # one of NEEDS: which arguments fn takes (see the module docstring)


METRICS: dict[str, Metric] = {
    "road_morf": Metric(road_morf, "faithfulness", False, "model"),
    "road_lerf": Metric(road_lerf, "faithfulness", True, "model"),
    "deletion_auc": Metric(deletion_auc, "faithfulness", False, "model"),
    "insertion_auc": Metric(insertion_auc, "faithfulness", True, "model"),
    "faithfulness_correlation": Metric(faithfulness_correlation, "faithfulness", True, "model"),
    "random_logit": Metric(random_logit, "randomisation", False, "explainer"),
    "emprt": Metric(emprt, "randomisation", True, "explainer"),
    "max_sensitivity": Metric(max_sensitivity, "robustness", False, "explainer"),
    "sparseness": Metric(sparseness, "complexity", True, "maps"),
    "entropy": Metric(entropy, "complexity", False, "maps"),
}

__all__ = ["METRICS", "NEEDS", "Metric", "deletion_auc", "emprt", "entropy", "faithfulness_correlation",
           "insertion_auc", "max_sensitivity", "random_logit", "road_lerf", "road_morf", "sparseness"]
