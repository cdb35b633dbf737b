"""Selective prediction: what abstaining on the least confident images buys (Geifman & El-Yaniv 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RiskCoverage:
    """coverage[k] = (k + 1) / n, risk[k] = error rate among the k + 1 most confident images; `aurc`
    is the mean risk over all coverages (lower is better; a perfect ranking of errors last reaches
    the minimum for the model's accuracy)."""

    coverage: np.ndarray
    risk: np.ndarray
    aurc: float

    def risk_at(self, coverage: float) -> float:
        """Error rate when predicting on the most confident `coverage` fraction of images."""
        k = max(int(np.ceil(coverage * len(self.risk))) - 1, 0)
        return float(self.risk[k])


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> RiskCoverage:
    """From each image's confidence (e.g. its top-1 probability) and whether its prediction was right.
    Ties in confidence keep the images' order (stable sort), so the curve is deterministic."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    if len(confidence) == 0:
        raise ValueError("risk-coverage needs at least one image")
    order = np.argsort(-confidence, kind="stable")
    errors = np.cumsum(~correct[order])
    kept = np.arange(1, len(order) + 1)
    risk = errors / kept
    return RiskCoverage(kept / len(order), risk, float(risk.mean()))
