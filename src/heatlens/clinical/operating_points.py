"""Operating points: a one-vs-rest threshold chosen on validation by a named rule, and what it yields on
test (sensitivity, specificity, PPV, NPV) with bootstrap intervals over test images."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from heatlens.clinical.intervals import Interval, bootstrap_indices, percentile_interval

RULES = ("youden", "sensitivity@<x>", "specificity@<x>", "no_false_negative")
RATES = ("sensitivity", "specificity", "ppv", "npv")
_TARGETED = re.compile(r"^(sensitivity|specificity)@(0?\.\d+|1(\.0*)?)$")


@dataclass(frozen=True)
class OperatingRule:
    """`name`: youden | sensitivity | specificity | no_false_negative; `target` for the two @ rules."""

    name: str
    target: float | None = None

    def __str__(self) -> str:
        return self.name if self.target is None else f"{self.name}@{self.target:g}"

    def describe(self) -> str:
        if self.target is not None:
            return f"{self.name} >= {self.target:g} on val"
        return {"youden": "max sensitivity + specificity - 1 on val", "no_false_negative": "no missed case on val"}[
            self.name]


def parse_rule(text: str) -> OperatingRule:
    """`youden`, `no_false_negative`, `sensitivity@0.95`, `specificity@0.9` (target in (0, 1])."""
    text = str(text).strip()
    if text in ("youden", "no_false_negative"):
        return OperatingRule(text)
    match = _TARGETED.match(text)
    if match and 0.0 < float(match.group(2)) <= 1.0:
        return OperatingRule(match.group(1), float(match.group(2)))
    raise ValueError(f"{text!r}: expected one of {list(RULES)} with x in (0, 1], e.g. sensitivity@0.95")


def choose_threshold(scores: np.ndarray, positive: np.ndarray, rule: OperatingRule) -> float:
    """The threshold t (decision: score >= t) the rule picks on these scores; NaN when the data cannot
    support it (no positive, or no negative for youden / specificity)."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    pos, neg = np.sort(scores[positive])[::-1], np.sort(scores[~positive])
    if rule.name == "no_false_negative":
        return float(pos[-1]) if len(pos) else float("nan")
    if rule.name == "sensitivity":
        # The highest threshold that still catches ceil(x * P) positives.
        needed = math.ceil(rule.target * len(pos) - 1e-9)
        return float(pos[max(needed, 1) - 1]) if len(pos) else float("nan")
    if rule.name == "specificity":
        # The lowest threshold that leaves ceil(x * N) negatives strictly below it.
        needed = math.ceil(rule.target * len(neg) - 1e-9)
        return float(np.nextafter(neg[max(needed, 1) - 1], np.inf)) if len(neg) else float("nan")
    if rule.name == "youden":
        if not len(pos) or not len(neg):
            return float("nan")
        from sklearn.metrics import roc_curve  # here: the config check imports this module

        fpr, tpr, thresholds = roc_curve(positive, scores, drop_intermediate=False)
        best = int(np.argmax((tpr - fpr)[1:])) + 1  # thresholds[0] is +inf: nothing predicted positive
        return float(thresholds[best])
    raise ValueError(f"unknown operating rule {rule}")


def _rates_from_counts(tp, fp, tn, fn) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "sensitivity": np.where(tp + fn > 0, tp / (tp + fn), np.nan),
            "specificity": np.where(tn + fp > 0, tn / (tn + fp), np.nan),
            "ppv": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
            "npv": np.where(tn + fn > 0, tn / (tn + fn), np.nan),
        }


def binary_rates(scores: np.ndarray, positive: np.ndarray, threshold: float) -> dict[str, float]:
    """Counts tp / fp / tn / fn and sensitivity, specificity, PPV, NPV of `scores >= threshold` (NaN when undefined)."""
    predicted, positive = np.asarray(scores) >= threshold, np.asarray(positive, dtype=bool)
    counts = {"tp": int(np.sum(predicted & positive)), "fp": int(np.sum(predicted & ~positive)),
              "tn": int(np.sum(~predicted & ~positive)), "fn": int(np.sum(~predicted & positive))}
    rates = _rates_from_counts(*(np.float64(counts[k]) for k in ("tp", "fp", "tn", "fn")))
    return counts | {name: float(value) for name, value in rates.items()}


def rate_intervals(scores: np.ndarray, positive: np.ndarray, threshold: float, n_boot: int = 1000,
                   confidence: float = 0.95, seed: int = 0) -> dict[str, Interval]:
    """Each of RATES at a fixed threshold with a percentile bootstrap interval over the test images."""
    predicted, positive = np.asarray(scores) >= threshold, np.asarray(positive, dtype=bool)
    idx = bootstrap_indices(len(predicted), n_boot, seed)
    p, y = predicted[idx], positive[idx]
    boot = _rates_from_counts(*(np.sum(a, axis=1).astype(np.float64) for a in (p & y, p & ~y, ~p & ~y, ~p & y)))
    point = binary_rates(scores, positive, threshold)
    return {name: percentile_interval(point[name], boot[name], confidence) for name in RATES}


def auroc_interval(scores: np.ndarray, positive: np.ndarray, n_boot: int = 1000, confidence: float = 0.95,
                   seed: int = 0) -> Interval:
    """One-vs-rest AUROC with a percentile bootstrap interval (resamples lacking a class are skipped)."""
    from sklearn.metrics import roc_auc_score

    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return Interval(float("nan"), float("nan"), float("nan"))
    samples = [roc_auc_score(positive[i], scores[i]) for i in bootstrap_indices(len(scores), n_boot, seed)
               if 0 < positive[i].sum() < len(i)]
    return percentile_interval(float(roc_auc_score(positive, scores)), np.asarray(samples), confidence)
