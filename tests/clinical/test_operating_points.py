"""Each operating-point rule on hand-made scores; bootstrap intervals on a seeded binomial simulation."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from heatlens.clinical import auroc_interval, binary_rates, choose_threshold, parse_rule, rate_intervals
from heatlens.clinical.intervals import bootstrap_indices
from heatlens.clinical.operating_points import resampled_aurocs

# Ten images: five positives, five negatives; decision = score >= threshold.
SCORES = np.array([0.95, 0.9, 0.7, 0.6, 0.3, 0.8, 0.5, 0.4, 0.2, 0.1])
POSITIVE = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)


@pytest.mark.parametrize(("rule", "threshold", "sensitivity", "specificity"), [
    ("no_false_negative", 0.3, 1.0, 0.4),        # lowest positive score: every positive caught
    ("sensitivity@0.8", 0.6, 0.8, 0.8),          # 4 of 5 positives: the 4th highest positive score
    ("sensitivity@0.95", 0.3, 1.0, 0.4),         # ceil(0.95 * 5) = 5 positives
    ("specificity@0.8", np.nextafter(0.5, 1), 0.8, 0.8),  # 4 of 5 negatives strictly below
    ("specificity@1", np.nextafter(0.8, 1), 0.4, 1.0),
    ("youden", 0.6, 0.8, 0.8),                   # J = 0.6, the best over all thresholds
])
def test_rules_on_hand_made_scores(rule, threshold, sensitivity, specificity):
    chosen = choose_threshold(SCORES, POSITIVE, parse_rule(rule))
    assert chosen == threshold
    assert str(parse_rule(rule)) == rule and "on val" in parse_rule(rule).describe()
    rates = binary_rates(SCORES, POSITIVE, chosen)
    assert (rates["sensitivity"], rates["specificity"]) == pytest.approx((sensitivity, specificity))


def test_youden_is_the_maximum_over_every_threshold():
    rng = np.random.default_rng(0)
    positive = rng.random(200) < 0.3
    scores = rng.normal(positive * 1.0, 1.0)
    best = max(binary_rates(scores, positive, t)["sensitivity"] + binary_rates(scores, positive, t)["specificity"]
               for t in scores)
    chosen = choose_threshold(scores, positive, parse_rule("youden"))
    rates = binary_rates(scores, positive, chosen)
    assert rates["sensitivity"] + rates["specificity"] == pytest.approx(best)


def test_rates_ppv_npv_and_counts_by_hand():
    rates = binary_rates(SCORES, POSITIVE, 0.6)
    assert (rates["tp"], rates["fp"], rates["tn"], rates["fn"]) == (4, 1, 4, 1)
    assert rates["ppv"] == pytest.approx(0.8) and rates["npv"] == pytest.approx(0.8)
    assert np.isnan(binary_rates(SCORES, POSITIVE, 2.0)["ppv"])  # nothing predicted positive


def test_rules_without_the_data_they_need_give_nan():
    assert np.isnan(choose_threshold(SCORES[5:], POSITIVE[5:], parse_rule("no_false_negative")))
    assert np.isnan(choose_threshold(SCORES[:5], POSITIVE[:5], parse_rule("youden")))


@pytest.mark.parametrize("bad", ["sensitivity@1.5", "sensitivity@0", "recall@0.9", "youden@0.9", ""])
def test_bad_rule_names_the_choices(bad):
    with pytest.raises(ValueError, match="youden"):
        parse_rule(bad)


def test_bootstrap_interval_covers_a_binomial_sensitivity_at_the_nominal_rate():
    """200 seeded test sets of 100 positives with true sensitivity 0.8: the 95% interval must cover
    0.8 in 95% of them, within 3 binomial standard errors of the simulation (±0.046)."""
    rng = np.random.default_rng(2026)
    true, n, trials, covered = 0.8, 100, 200, 0
    negatives = np.zeros(50)
    for trial in range(trials):
        caught = (rng.random(n) < true).astype(float)  # score 1: above threshold, 0: below
        scores = np.concatenate([caught, negatives])
        positive = np.concatenate([np.ones(n, bool), np.zeros(50, bool)])
        interval = rate_intervals(scores, positive, 0.5, n_boot=1000, seed=trial)["sensitivity"]
        covered += interval.low <= true <= interval.high
    assert abs(covered / trials - 0.95) <= 3 * np.sqrt(0.95 * 0.05 / trials)


def test_intervals_bracket_the_estimate_and_repeat_with_the_seed():
    intervals = rate_intervals(SCORES, POSITIVE, 0.6, n_boot=500, seed=3)
    for name, interval in intervals.items():
        assert interval.low <= interval.estimate <= interval.high, name
    assert rate_intervals(SCORES, POSITIVE, 0.6, n_boot=500, seed=3) == intervals


def test_auroc_interval():
    rng = np.random.default_rng(1)
    positive = rng.random(300) < 0.4
    scores = rng.normal(positive * 1.2, 1.0)
    interval = auroc_interval(scores, positive, n_boot=300, seed=0)
    assert interval.estimate == pytest.approx(roc_auc_score(positive, scores))
    assert interval.low < interval.estimate < interval.high
    assert interval.high - interval.low < 0.2


def test_every_resampled_auroc_equals_sklearns_ties_and_one_class_resamples_included():
    rng = np.random.default_rng(2)
    positive = np.array([1, 0, 0, 1, 0, 0, 0, 0], dtype=bool)  # 10 % of resamples draw no positive
    scores = np.round(rng.normal(positive * 0.8, 1.0), 1)  # rounded: resamples hold tied scores
    indices = bootstrap_indices(len(scores), 400, seed=5)
    aurocs = resampled_aurocs(scores, positive, indices)
    one_class = [not 0 < positive[i].sum() < len(i) for i in indices]
    assert 0 < sum(one_class) < len(indices)  # the toy set is small enough to draw some
    for row, auroc, skipped in zip(indices, aurocs, one_class):
        if skipped:
            assert np.isnan(auroc)
        else:
            assert auroc == pytest.approx(roc_auc_score(positive[row], scores[row]), abs=1e-12)


def test_resampled_aurocs_in_chunks_equal_all_rows_at_once(monkeypatch):
    rng = np.random.default_rng(3)
    positive = rng.random(50) < 0.5
    scores = rng.random(50)
    indices = bootstrap_indices(50, 64, seed=1)
    whole = resampled_aurocs(scores, positive, indices)
    monkeypatch.setattr("heatlens.clinical.operating_points._CHUNK_CELLS", 7 * 50)
    np.testing.assert_array_equal(resampled_aurocs(scores, positive, indices), whole)


def test_no_false_negative_on_val_applied_to_test():
    """The rule's threshold is the lowest validation positive; on test it can miss and false-alarm."""
    val_scores, val_positive = np.array([0.9, 0.4, 0.7, 0.5, 0.2]), np.array([1, 1, 1, 0, 0], dtype=bool)
    threshold = choose_threshold(val_scores, val_positive, parse_rule("no_false_negative"))
    assert threshold == 0.4
    # Test: positives 0.3 (missed) and 0.8 (caught); negatives 0.45 (false alarm) and 0.1.
    rates = binary_rates(np.array([0.3, 0.8, 0.45, 0.1]), np.array([1, 1, 0, 0], dtype=bool), threshold)
    assert (rates["tn"], rates["fp"], rates["fn"], rates["tp"]) == (1, 1, 1, 1)
    assert rates["sensitivity"] == 0.5 and rates["specificity"] == 0.5
