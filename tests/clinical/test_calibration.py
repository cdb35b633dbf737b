"""Calibration maths against torchmetrics / scikit-learn, hand-checked equal-mass bins, and temperature
scaling on constructed over-confident logits."""

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from heatlens.clinical import (
    apply_temperature,
    brier_score,
    calibration_error,
    calibration_summary,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
)
from heatlens.clinical.calibration import class_summary


def planted(n: int, classes: int, temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated logits z (labels drawn from softmax(z)) and the over-confident probabilities softmax(z * T)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, size=(n, classes))
    true = softmax(logits, axis=1)
    labels = np.array([rng.choice(classes, p=p) for p in true])
    return true, softmax(logits * temperature, axis=1), labels


@pytest.mark.parametrize("n_bins", [5, 15])
def test_top_label_ece_and_mce_equal_torchmetrics(n_bins):
    _, probs, labels = planted(500, 4, 2.0, seed=1)
    summary = calibration_summary(probs, labels, n_bins=n_bins)
    preds, target = torch.from_numpy(probs), torch.from_numpy(labels)
    for norm, ours in (("l1", summary.ece), ("max", summary.mce)):
        reference = multiclass_calibration_error(preds, target, num_classes=4, n_bins=n_bins, norm=norm)
        assert ours == pytest.approx(float(reference), abs=1e-6)  # torchmetrics casts to float32


def test_one_vs_rest_ece_equals_torchmetrics_binary():
    _, probs, labels = planted(400, 3, 1.7, seed=2)
    for k in range(3):
        ours = class_summary(probs, labels, k, n_bins=10)
        target = torch.from_numpy((labels == k).astype(np.int64))
        for norm, key in (("l1", "ece"), ("max", "mce")):
            reference = binary_calibration_error(torch.from_numpy(probs[:, k]), target, n_bins=10, norm=norm)
            assert ours[key] == pytest.approx(float(reference), abs=1e-9)
        assert ours["brier"] == pytest.approx(brier_score_loss(labels == k, probs[:, k]), abs=1e-12)


def test_brier_and_nll_equal_scikit_learn():
    _, probs, labels = planted(300, 5, 3.0, seed=3)
    assert brier_score(probs, labels) == pytest.approx(
        brier_score_loss(labels, probs, labels=list(range(5)), scale_by_half=False), abs=1e-12)
    assert negative_log_likelihood(probs, labels) == pytest.approx(log_loss(labels, probs, labels=list(range(5))),
                                                                   abs=1e-9)


def test_equal_mass_bins_by_hand():
    confidences = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.9])
    outcomes = np.array([0, 0, 1, 0, 1, 1])
    bins = reliability_bins(confidences, outcomes, n_bins=3, strategy="mass")
    # Sorted values in pairs: {0.1, 0.2}, {0.3, 0.4}, {0.6, 0.9}.
    np.testing.assert_array_equal(bins.count, [2, 2, 2])
    np.testing.assert_allclose(bins.confidence, [0.15, 0.35, 0.75])
    np.testing.assert_allclose(bins.frequency, [0.0, 0.5, 1.0])
    ece = (abs(0.0 - 0.15) + abs(0.5 - 0.35) + abs(1.0 - 0.75)) / 3
    assert calibration_error(confidences, outcomes, 3, "l1", "mass") == pytest.approx(ece)
    assert calibration_error(confidences, outcomes, 3, "max", "mass") == pytest.approx(0.25)


def test_equal_width_bins_put_one_in_the_last_bin_and_report_empty_bins():
    bins = reliability_bins(np.array([0.0, 0.49, 0.5, 1.0]), np.array([0, 1, 1, 1]), n_bins=2)
    np.testing.assert_array_equal(bins.count, [2, 2])
    bins = reliability_bins(np.array([0.05, 0.95]), np.array([0, 1]), n_bins=4)
    np.testing.assert_array_equal(bins.count, [1, 0, 0, 1])
    assert np.isnan(bins.frequency[1])


def test_temperature_scaling_recovers_a_planted_temperature():
    true, overconfident, labels = planted(4000, 4, 2.5, seed=4)
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(2.5, rel=0.1)
    calibrated = apply_temperature(overconfident, temperature)
    np.testing.assert_array_equal(calibrated.argmax(1), overconfident.argmax(1))  # accuracy unchanged
    before, after = calibration_summary(overconfident, labels), calibration_summary(calibrated, labels)
    assert after.ece < before.ece / 2
    assert after.nll < before.nll
    # Dividing by the planted temperature gives back the calibrated probabilities.
    np.testing.assert_allclose(apply_temperature(overconfident, 2.5), true, atol=1e-9)


def test_temperature_of_calibrated_probabilities_is_near_one():
    true, _, labels = planted(4000, 3, 1.0, seed=5)
    assert fit_temperature(true, labels) == pytest.approx(1.0, abs=0.1)


def test_temperature_scaling_survives_probabilities_that_underflowed_to_zero():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    labels = np.array([0, 1, 1, 0])
    temperature = fit_temperature(probs, labels)
    assert np.isfinite(temperature) and temperature > 1
    assert np.isfinite(apply_temperature(probs, temperature)).all()
