"""Paired bootstrap and report statistics against known answers and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from heatlens.report import CompareError, mean_interval, paired_bootstrap
from heatlens.report import metrics as M


def test_identical_runs_differ_by_zero_with_p_one():
    values = np.random.default_rng(0).uniform(size=50)
    result = paired_bootstrap(M.mean_value, [values], [values.copy()], n_boot=500)
    assert result.difference.estimate == 0.0
    assert (result.difference.low, result.difference.high) == (0.0, 0.0)
    assert result.p_value == 1.0


def test_planted_shift_is_found_and_covered():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.6, size=80)
    shifted = base + 0.3 + rng.normal(0, 0.05, size=80)
    result = paired_bootstrap(M.mean_value, [shifted], [base], n_boot=1000, seed=3)
    assert result.difference.estimate == pytest.approx(np.mean(shifted - base))
    assert result.difference.low < 0.3 < result.difference.high
    assert result.p_value == pytest.approx(1 / 1001)


def test_pairing_beats_unpaired_noise():
    """Large per-image spread shared by both runs cancels out in the paired difference."""
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 1.0, size=100)
    a, b = shared + 0.1, shared
    result = paired_bootstrap(M.mean_value, [a], [b], n_boot=500)
    assert result.difference.high - result.difference.low < 1e-9
    assert result.p_value < 0.01


def test_null_rejection_rate_and_interval_coverage_are_nominal():
    """Under no true difference p < 0.05 about 5 % of the time; intervals cover the true shift ~95 %."""
    rng = np.random.default_rng(4)
    rejections, covered = 0, 0
    trials = 200
    for trial in range(trials):
        a = rng.normal(0, 1, size=60)
        b = rng.normal(0, 1, size=60)
        null = paired_bootstrap(M.mean_value, [a], [b], n_boot=300, seed=trial)
        rejections += null.p_value < 0.05
        shifted = paired_bootstrap(M.mean_value, [b + 0.5], [a], n_boot=300, seed=trial)
        covered += shifted.difference.low <= 0.5 <= shifted.difference.high
    assert 0.01 <= rejections / trials <= 0.11
    assert 0.88 <= covered / trials <= 0.99


def test_recall_difference_of_a_perfect_and_a_bad_classifier():
    labels = np.arange(120) % 4
    bad = np.where(np.arange(120) % 2 == 0, labels, (labels + 1) % 4)
    result = paired_bootstrap(M.macro_recall, [labels, labels], [labels, bad], metric="recall_macro", n_boot=500)
    assert result.value_a == 1.0
    assert result.value_b == pytest.approx(0.5)
    assert result.difference.low > 0.3
    assert result.p_value < 0.01


def test_statistics_match_sklearn():
    rng = np.random.default_rng(5)
    for trial in range(30):
        labels = rng.integers(0, 4, size=37)
        preds = np.where(rng.random(37) < 0.6, labels, rng.integers(0, 4, size=37))
        if trial % 3 == 0:
            labels[labels == 3] = 0  # class 3 only predicted, never true: counts as recall 0, like sklearn
        assert M.macro_recall(labels, preds) == pytest.approx(
            recall_score(labels, preds, average="macro", zero_division=0)
        )
        assert M.macro_f1(labels, preds) == pytest.approx(f1_score(labels, preds, average="macro", zero_division=0))
        assert M.accuracy(labels, preds) == pytest.approx(accuracy_score(labels, preds))


def test_aopc_per_image_hand_computed():
    curves = np.array([[1.0, 0.5, 0.0], [0.8, 0.8, 0.8]])
    # image 0: (0 + 0.5 + 1.0) / 3 ; image 1: no drop at all.
    assert M.aopc_per_image(curves) == pytest.approx([0.5, 0.0])


def test_mean_interval_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(6)
    small = mean_interval(rng.normal(1, 1, 20), n_boot=500)
    large = mean_interval(rng.normal(1, 1, 2000), n_boot=500)
    assert small.low < small.estimate < small.high
    assert large.high - large.low < (small.high - small.low) / 4
    assert large.low < 1.0 < large.high


def test_unmatched_lengths_and_bad_confidence_are_refused():
    with pytest.raises(CompareError, match="differ in length"):
        paired_bootstrap(M.mean_value, [np.zeros(3)], [np.zeros(4)])
    with pytest.raises(CompareError, match="confidence"):
        mean_interval(np.zeros(3), confidence=95)


def test_vectorised_mean_path_equals_the_generic_loop():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=30), rng.normal(size=30)
    fast = paired_bootstrap(M.mean_value, [a], [b], n_boot=200, seed=1)
    loop = paired_bootstrap(lambda x: M.mean_value(x), [a], [b], n_boot=200, seed=1)
    assert fast.difference.low == pytest.approx(loop.difference.low)
    assert fast.difference.high == pytest.approx(loop.difference.high)
    assert fast.p_value == loop.p_value


def test_aopc_per_image_equals_the_explain_library():
    import torch

    from heatlens.explain import perturbation

    curves = np.random.default_rng(8).uniform(size=(6, 9))
    expected = perturbation.aopc_per_image(torch.as_tensor(curves)).numpy()
    assert M.aopc_per_image(curves) == pytest.approx(expected)
