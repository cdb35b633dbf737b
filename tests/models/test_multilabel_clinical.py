"""Per-finding reports and clinical numbers of a multi-label model, on known labels only, against
scikit-learn and hand-counted cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from heatlens.clinical import ClinicalSettings, binary_rates, choose_threshold, clinical_evaluation
from heatlens.clinical.multilabel import SKIPPED
from heatlens.models.evaluation import multilabel_confusions, multilabel_report, roc_curves

FINDINGS = ["Effusion", "Mass"]
NAN = np.nan


def _split(seed: int, n: int = 120) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 2)) < 0.4).astype(np.float64)
    probs = np.clip(0.35 * labels + 0.65 * rng.random((n, 2)), 0, 1)
    labels[rng.random((n, 2)) < 0.2] = NAN
    return {"labels": labels, "probs": probs}


def test_report_confusions_and_roc_use_the_known_labels_only() -> None:
    labels = np.array([[1, 0], [0, NAN], [1, 1], [NAN, 0], [0, 1]], dtype=np.float64)
    probs = np.array([[0.9, 0.2], [0.6, 0.9], [0.4, 0.7], [0.99, 0.1], [0.1, 0.3]])
    counts = multilabel_confusions(labels, probs)
    # Effusion, rows 0, 1, 2, 4 known: TP (0.9), FP (0.6), FN (0.4), TN (0.1).
    assert counts[0].tolist() == [[1, 1], [1, 1]]
    # Mass, rows 0, 2, 3, 4 known: TN, TP, TN, FN.
    assert counts[1].tolist() == [[2, 0], [1, 1]]
    _, report = multilabel_report(labels, probs, FINDINGS)
    assert report["Effusion"]["known"] == 4 and report["Effusion"]["positive"] == 2
    assert report["Effusion"]["auroc"] == pytest.approx(skm.roc_auc_score([1, 0, 1, 0], [0.9, 0.6, 0.4, 0.1]))
    assert report["Mass"]["ap"] == pytest.approx(skm.average_precision_score([0, 1, 0, 1], [0.2, 0.7, 0.1, 0.3]))
    assert (report["Mass"]["sensitivity"], report["Mass"]["specificity"]) == (0.5, 1.0)
    curves = roc_curves(labels, probs, FINDINGS)
    assert curves["Mass"]["auc"] == pytest.approx(skm.roc_auc_score([0, 1, 0, 1], [0.2, 0.7, 0.1, 0.3]))


def test_clinical_numbers_per_finding() -> None:
    test, val = _split(0), _split(1)
    settings = ClinicalSettings(n_boot=100)
    result = clinical_evaluation(test, val, FINDINGS, None, settings, seed=3)
    assert result.skipped == SKIPPED and result.temperature is None and not result.risk
    for k, name in enumerate(FINDINGS):
        known, val_known = ~np.isnan(test["labels"][:, k]), ~np.isnan(val["labels"][:, k])
        y, p = test["labels"][known, k] == 1, test["probs"][known, k]
        threshold = choose_threshold(val["probs"][val_known, k], val["labels"][val_known, k] == 1,
                                     settings.operating_point)
        assert result.thresholds[name] == threshold
        rates = binary_rates(p, y, threshold)
        assert result.metrics[f"test/op_sensitivity/{name}"] == pytest.approx(rates["sensitivity"])
        assert result.confusions[name] == [[rates["tn"], rates["fp"]], [rates["fn"], rates["tp"]]]
        auroc = skm.roc_auc_score(y, p)
        assert result.metrics[f"test/auroc_low/{name}"] <= auroc <= result.metrics[f"test/auroc_high/{name}"]
        assert result.metrics[f"test/brier_ovr/{name}"] == pytest.approx(np.mean((p - y) ** 2))
    assert set(result.reliability) == set(FINDINGS)
    assert [p["class_name"] for p in result.report["operating_points"]] == FINDINGS
    again = clinical_evaluation(test, val, FINDINGS, None, settings, seed=3)
    assert again.metrics == result.metrics  # same seed, same numbers


def test_a_finding_without_known_validation_labels_gets_no_operating_point() -> None:
    test, val = _split(0), _split(1)
    val["labels"][:, 1] = NAN
    result = clinical_evaluation(test, val, FINDINGS, None, ClinicalSettings(n_boot=100))
    assert "Effusion" in result.thresholds and "Mass" not in result.thresholds
    assert np.isfinite(result.metrics["test/auroc_low/Mass"])  # test numbers of Mass still there
