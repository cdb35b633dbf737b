"""Clinical numbers of a multi-label model: each finding is its own binary test on its sigmoid
probability, scored on the images whose label for it is known (NaN = unknown is left out).

Per finding: AUROC interval, calibration (ECE, MCE, equal-mass ECE, Brier of p(finding)), reliability
bins and the operating point chosen on validation with its test rates. Not computed: temperature
scaling, top-label calibration, risk-coverage and TTA summaries, which assume one softmax over
exclusive classes; `skipped` says so (logged as one line by the caller).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from heatlens.clinical.calibration import calibration_error, reliability_bins
from heatlens.clinical.evaluation import ClinicalEvaluation, record_operating_point
from heatlens.clinical.operating_points import auroc_interval, choose_threshold
from heatlens.clinical.settings import ClinicalSettings

SKIPPED = ("multi-label run: per-finding calibration and operating points only; temperature scaling, "
           "top-label calibration, risk-coverage and TTA summaries are multi-class only")


def finding_calibration(p: np.ndarray, event: np.ndarray, n_bins: int) -> dict[str, float]:
    """ECE, MCE, equal-mass ECE and Brier score of one finding's probabilities against its known labels."""
    return {
        "ece": calibration_error(p, event, n_bins, "l1", "width"),
        "mce": calibration_error(p, event, n_bins, "max", "width"),
        "ece_mass": calibration_error(p, event, n_bins, "l1", "mass"),
        "brier": float(np.mean((p - event) ** 2)) if len(p) else float("nan"),
    }


def multilabel_clinical(test: Mapping[str, np.ndarray], val: Mapping[str, np.ndarray], finding_names: Sequence[str],
                        settings: ClinicalSettings, seed: int = 0) -> ClinicalEvaluation:
    """`test` / `val`: `probs` (N, K) sigmoids and `labels` (N, K) of 1 / 0 / NaN. Thresholds are chosen on
    validation by `settings.operating_point` and applied to test, both on the raw probabilities."""
    labels, probs = np.asarray(test["labels"], dtype=np.float64), np.asarray(test["probs"], dtype=np.float64)
    val_labels, val_probs = np.asarray(val["labels"], dtype=np.float64), np.asarray(val["probs"], dtype=np.float64)
    out = ClinicalEvaluation(skipped=SKIPPED)
    if len(labels) == 0:
        return out
    boot = dict(n_boot=settings.n_boot, confidence=settings.confidence)
    points = []
    for k, name in enumerate(finding_names):
        known = ~np.isnan(labels[:, k])
        p, positive = probs[known, k], labels[known, k] == 1
        out.metrics |= {f"test/{key}_ovr/{name}": v for key, v in finding_calibration(p, positive, settings.bins).items()}
        out.reliability[name] = [("uncalibrated", reliability_bins(p, positive, settings.bins))]
        auroc = auroc_interval(p, positive, seed=seed, **boot)
        out.metrics |= {f"test/auroc_low/{name}": auroc.low, f"test/auroc_high/{name}": auroc.high}
        val_known = ~np.isnan(val_labels[:, k]) if len(val_labels) else np.zeros(0, bool)
        threshold = choose_threshold(val_probs[val_known, k], val_labels[val_known, k] == 1, settings.operating_point) \
            if val_known.any() else float("nan")
        if not np.isfinite(threshold):
            continue
        point = record_operating_point(out, name, p, positive, threshold, seed, boot)
        points.append({**point, "known": int(known.sum()), "auroc": vars(auroc)})
    out.report = {
        "task": "multilabel", "calibration": "none", "temperature": None, "tta": settings.tta,
        "operating_point": str(settings.operating_point), "rule": settings.operating_point.describe(),
        "probabilities": "raw", "skipped": SKIPPED,
        "bootstrap": {"n_boot": settings.n_boot, "confidence": settings.confidence, "seed": seed},
        "operating_points": points,
        "reliability": {panel: {label: bins.to_dict() for label, bins in series}
                        for panel, series in out.reliability.items()},
    }
    return out
