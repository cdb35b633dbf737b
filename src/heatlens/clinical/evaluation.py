"""Every clinical number of one tested checkpoint, from validation and test probabilities, as flat
metric names (see docs/guides/clinical-numbers.md) plus what the figures and the served model need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from heatlens.clinical.calibration import (
    ReliabilityBins,
    apply_temperature,
    calibration_summary,
    class_summary,
    fit_temperature,
    reliability_bins,
)
from heatlens.clinical.operating_points import RATES, auroc_interval, binary_rates, choose_threshold, rate_intervals
from heatlens.clinical.selective import RiskCoverage, risk_coverage
from heatlens.clinical.settings import ClinicalSettings

TOP_LABEL = "top-1 (all classes)"
# Coverages whose selective error rate is logged as test/risk_cov<percent>.
COVERAGES = (0.8, 0.9)


@dataclass
class ClinicalEvaluation:
    """metrics: flat MLflow names -> value; report: the JSON artifact; temperature: None without
    calibration; thresholds: class -> threshold on the probabilities the served model returns;
    reliability: panel -> [(series label, bins)]; risk: curve label -> RiskCoverage;
    confusions: class -> [[TN, FP], [FN, TP]] at its operating point; skipped: what was not computed
    and why (one line), empty when everything was."""

    metrics: dict[str, float] = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    temperature: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    reliability: dict[str, list[tuple[str, ReliabilityBins]]] = field(default_factory=dict)
    risk: dict[str, RiskCoverage] = field(default_factory=dict)
    confusions: dict[str, list[list[int]]] = field(default_factory=dict)
    skipped: str = ""


def _calibration_metrics(prefix: str, probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                         n_bins: int) -> dict[str, float]:
    values = {f"{prefix}/{k}": v for k, v in calibration_summary(probs, labels, n_bins).to_dict().items()}
    for k, name in enumerate(class_names):
        # `<key>_ovr/<Class>`: a metric name cannot also be a folder of others (MLflow's file store).
        values |= {f"{prefix}/{key}_ovr/{name}": v for key, v in class_summary(probs, labels, k, n_bins).items()}
    return values


def _reliability(probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str], n_bins: int
                 ) -> dict[str, ReliabilityBins]:
    panels = {TOP_LABEL: reliability_bins(probs.max(1), probs.argmax(1) == labels, n_bins)}
    return panels | {name: reliability_bins(probs[:, k], labels == k, n_bins) for k, name in enumerate(class_names)}


def _risk(probs: np.ndarray, labels: np.ndarray) -> RiskCoverage:
    return risk_coverage(probs.max(1), probs.argmax(1) == labels)


def clinical_evaluation(test: Mapping[str, np.ndarray], val: Mapping[str, np.ndarray], class_names: Sequence[str],
                        healthy_class: str | None, settings: ClinicalSettings, seed: int = 0) -> ClinicalEvaluation:
    """`test` / `val`: `probs` (N, C) and `labels` (N,); `test` may hold `tta_probs` (N, C).

    Calibration is reported on the raw probabilities (`test/...`) and, with a temperature fitted on
    `val`, on the calibrated ones (`test/calibrated/...`); operating points are chosen on validation
    and applied to test on the calibrated probabilities when there are any, else the raw ones.
    Multi-label `labels` (N, K) of 1 / 0 / NaN: per finding, heatlens.clinical.multilabel.
    """
    if np.ndim(test["labels"]) == 2:
        from heatlens.clinical.multilabel import multilabel_clinical

        return multilabel_clinical(test, val, list(class_names), settings, seed)
    class_names = list(class_names)
    labels, probs = np.asarray(test["labels"], dtype=np.int64), np.asarray(test["probs"], dtype=np.float64)
    val_labels, val_probs = np.asarray(val["labels"], dtype=np.int64), np.asarray(val["probs"], dtype=np.float64)
    out = ClinicalEvaluation()
    if len(labels) == 0:
        return out
    n_bins, boot = settings.bins, dict(n_boot=settings.n_boot, confidence=settings.confidence)
    out.metrics |= _calibration_metrics("test", probs, labels, class_names, n_bins)
    raw_bins = _reliability(probs, labels, class_names, n_bins)
    out.reliability = {panel: [("uncalibrated", bins)] for panel, bins in raw_bins.items()}
    out.risk["uncalibrated"] = _risk(probs, labels)
    decided, decided_val = probs, val_probs
    if settings.calibration == "temperature" and len(val_labels):
        out.temperature = fit_temperature(val_probs, val_labels)
        decided, decided_val = apply_temperature(probs, out.temperature), apply_temperature(val_probs, out.temperature)
        out.metrics["val/temperature"] = out.temperature
        out.metrics |= _calibration_metrics("test/calibrated", decided, labels, class_names, n_bins)
        for panel, bins in _reliability(decided, labels, class_names, n_bins).items():
            out.reliability[panel].append((f"temperature {out.temperature:.2f}", bins))
        out.risk[f"temperature {out.temperature:.2f}"] = _risk(decided, labels)
    for name, curve in out.risk.items():
        prefix = "test" if name == "uncalibrated" else "test/calibrated"
        out.metrics[f"{prefix}/aurc"] = curve.aurc
        out.metrics |= {f"{prefix}/risk_cov{round(c * 100)}": curve.risk_at(c) for c in COVERAGES}
    if "tta_probs" in test:
        tta = np.asarray(test["tta_probs"], dtype=np.float64)
        out.metrics["test/tta/acc"] = float(np.mean(tta.argmax(1) == labels))
        out.metrics |= {f"test/tta/{k}": v for k, v in calibration_summary(tta, labels, n_bins).to_dict().items()}
        out.risk[f"TTA {settings.tta}"] = _risk(tta, labels)
        out.metrics["test/tta/aurc"] = out.risk[f"TTA {settings.tta}"].aurc

    points = []
    for k, name in enumerate(class_names):
        if name == healthy_class:
            continue
        positive = labels == k
        auroc = auroc_interval(probs[:, k], positive, seed=seed, **boot)
        out.metrics |= {f"test/auroc_low/{name}": auroc.low, f"test/auroc_high/{name}": auroc.high}
        threshold = choose_threshold(decided_val[:, k], val_labels == k, settings.operating_point)
        if not np.isfinite(threshold):
            continue
        points.append({**record_operating_point(out, name, decided[:, k], positive, threshold, seed, boot),
                       "auroc": vars(auroc)})
    out.report = {
        "calibration": settings.calibration, "temperature": out.temperature, "tta": settings.tta,
        "operating_point": str(settings.operating_point), "rule": settings.operating_point.describe(),
        "probabilities": "calibrated" if out.temperature is not None else "raw",
        "bootstrap": {"n_boot": settings.n_boot, "confidence": settings.confidence, "seed": seed},
        "operating_points": points,
        "reliability": {panel: {label: bins.to_dict() for label, bins in series}
                        for panel, series in out.reliability.items()},
    }
    return out


def record_operating_point(out: ClinicalEvaluation, name: str, scores: np.ndarray, positive: np.ndarray,
                           threshold: float, seed: int, boot: Mapping) -> dict:
    """Class `name`'s operating point at `threshold` (chosen on val) applied to the test `scores`: its
    threshold, test confusion and sensitivity / specificity with bootstrap intervals, into `out`; returns
    the point's entry of `reports/operating_points`."""
    rates = binary_rates(scores, positive, threshold)
    intervals = rate_intervals(scores, positive, threshold, seed=seed, **boot)
    out.thresholds[name] = threshold
    out.confusions[name] = [[rates["tn"], rates["fp"]], [rates["fn"], rates["tp"]]]
    out.metrics[f"val/op_threshold/{name}"] = threshold
    for rate in RATES:
        interval = intervals[rate]
        out.metrics |= {f"test/op_{rate}/{name}": interval.estimate, f"test/op_{rate}_low/{name}": interval.low,
                        f"test/op_{rate}_high/{name}": interval.high}
    return {"class_name": name, "threshold": threshold, "test_confusion": out.confusions[name],
            **{rate: vars(intervals[rate]) for rate in RATES}}
