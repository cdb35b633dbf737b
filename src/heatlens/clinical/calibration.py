"""Calibration of predicted probabilities: ECE / MCE (equal-width and equal-mass bins), Brier score,
negative log-likelihood, reliability bins, and temperature scaling (Guo et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

BIN_STRATEGIES = ("width", "mass")
# Probabilities are clipped here before a logarithm: float32 softmax underflows to exactly 0.
EPS = 1e-12
# Temperatures searched (log-uniform bounds): far outside them a model is broken, not miscalibrated.
TEMPERATURE_BOUNDS = (0.02, 50.0)


@dataclass(frozen=True)
class ReliabilityBins:
    """Per bin: lower / upper edge, image count, mean confidence and observed frequency (NaN when empty)."""

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    frequency: np.ndarray

    def to_dict(self) -> dict[str, list]:
        return {key: np.asarray(getattr(self, key)).tolist()
                for key in ("lower", "upper", "count", "confidence", "frequency")}


def _bin_ids(confidences: np.ndarray, n_bins: int, strategy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin of each value, and each bin's lower / upper edge.

    width: [0, 1/n), ..., [(n-1)/n, 1]; mass: the sorted values split into n groups of (nearly) equal size.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if strategy == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        ids = np.clip(np.searchsorted(edges, confidences, side="right") - 1, 0, n_bins - 1)
        return ids, edges[:-1], edges[1:]
    if strategy == "mass":
        order = np.argsort(confidences, kind="stable")
        ids = np.empty(len(confidences), dtype=np.int64)
        groups = np.array_split(order, n_bins)
        for k, group in enumerate(groups):
            ids[group] = k
        lower = np.array([confidences[g].min() if len(g) else np.nan for g in groups])
        upper = np.array([confidences[g].max() if len(g) else np.nan for g in groups])
        return ids, lower, upper
    raise ValueError(f"bin strategy {strategy!r}: expected one of {list(BIN_STRATEGIES)}")


def reliability_bins(confidences: np.ndarray, outcomes: np.ndarray, n_bins: int = 15,
                     strategy: str = "width") -> ReliabilityBins:
    """Bin `confidences` (predicted probabilities of the event) and compare with `outcomes` (1 if it happened)."""
    confidences = np.asarray(confidences, dtype=np.float64)
    outcomes = np.asarray(outcomes, dtype=np.float64)
    ids, lower, upper = _bin_ids(confidences, n_bins, strategy)
    count = np.bincount(ids, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(ids, confidences, minlength=n_bins) / count
        frequency = np.bincount(ids, outcomes, minlength=n_bins) / count
    return ReliabilityBins(lower, upper, count, confidence, frequency)


def calibration_error(confidences: np.ndarray, outcomes: np.ndarray, n_bins: int = 15, norm: str = "l1",
                      strategy: str = "width") -> float:
    """ECE (`norm="l1"`: count-weighted mean |frequency - confidence| over bins) or MCE (`"max"`: the
    largest gap of a non-empty bin). For a multiclass model pass the top-1 probability and whether the
    argmax was right; for one class one-vs-rest, its probability and whether the image has it."""
    if len(confidences) == 0:
        return float("nan")
    bins = reliability_bins(confidences, outcomes, n_bins, strategy)
    filled = bins.count > 0
    gaps = np.abs(bins.frequency[filled] - bins.confidence[filled])
    if norm == "l1":
        return float(np.sum(gaps * bins.count[filled]) / bins.count.sum())
    if norm == "max":
        return float(gaps.max())
    raise ValueError(f"norm {norm!r}: expected 'l1' or 'max'")


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean over images of the squared distance between the probability vector and the one-hot label."""
    probs = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(probs.shape[1])[np.asarray(labels, dtype=np.int64)]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class), probabilities clipped at 1e-12 (what scikit-learn's log_loss does with eps)."""
    probs = np.asarray(probs, dtype=np.float64)
    true = probs[np.arange(len(probs)), np.asarray(labels, dtype=np.int64)]
    return float(-np.mean(np.log(np.clip(true, EPS, 1.0))))


def log_scores(probs: np.ndarray) -> np.ndarray:
    """log p: logits up to a per-image constant, which softmax ignores (so temperature scaling can work
    from stored probabilities)."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): T > 1 softens over-confident probabilities; the argmax never changes."""
    return softmax(log_scores(probs) / float(temperature), axis=1)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the validation NLL of softmax(log p / T), searched on log T within TEMPERATURE_BOUNDS."""
    scores = log_scores(probs)
    rows, labels = np.arange(len(scores)), np.asarray(labels, dtype=np.int64)
    if len(scores) == 0:
        raise ValueError("cannot fit a temperature on zero images")

    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax(scores / np.exp(log_t), axis=1)[rows, labels]))

    bounds = tuple(np.log(TEMPERATURE_BOUNDS))
    result = minimize_scalar(nll, bounds=bounds, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


@dataclass(frozen=True)
class CalibrationSummary:
    """Top-label ECE / MCE (equal-width), ECE with equal-mass bins, Brier and NLL of one set of probabilities."""

    ece: float
    mce: float
    ece_mass: float
    brier: float
    nll: float

    def to_dict(self) -> dict[str, float]:
        return {"ece": self.ece, "mce": self.mce, "ece_mass": self.ece_mass, "brier": self.brier, "nll": self.nll}


def calibration_summary(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> CalibrationSummary:
    probs = np.asarray(probs, dtype=np.float64)
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == np.asarray(labels)
    return CalibrationSummary(
        ece=calibration_error(confidence, correct, n_bins, "l1", "width"),
        mce=calibration_error(confidence, correct, n_bins, "max", "width"),
        ece_mass=calibration_error(confidence, correct, n_bins, "l1", "mass"),
        brier=brier_score(probs, labels),
        nll=negative_log_likelihood(probs, labels),
    )


def class_summary(probs: np.ndarray, labels: np.ndarray, class_index: int, n_bins: int = 15) -> dict[str, float]:
    """One class one-vs-rest: ECE, MCE, equal-mass ECE and binary Brier score of p(class)."""
    p, event = np.asarray(probs, dtype=np.float64)[:, class_index], np.asarray(labels) == class_index
    return {
        "ece": calibration_error(p, event, n_bins, "l1", "width"),
        "mce": calibration_error(p, event, n_bins, "max", "width"),
        "ece_mass": calibration_error(p, event, n_bins, "l1", "mass"),
        "brier": float(np.mean((p - event) ** 2)),
    }
