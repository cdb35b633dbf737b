"""Post-test evaluation: operating points by hand, ROC/report against scikit-learn, readable figures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from heatlens.models.evaluation import classification_report, operating_point, roc_curves
from heatlens.plots.training import confusion_matrix_figure, recall_history_figure, roc_figure


def _split(labels: list[int], positive_scores: dict[int, float]) -> dict[str, np.ndarray]:
    probs = np.zeros((len(labels), 2))
    probs[:, 1] = [positive_scores[i] for i in range(len(labels))]
    probs[:, 0] = 1 - probs[:, 1]
    return {"labels": np.array(labels), "probs": probs}


def test_operating_point_is_the_highest_threshold_without_a_missed_positive() -> None:
    val = _split([1, 1, 1, 0, 0], {0: 0.9, 1: 0.4, 2: 0.7, 3: 0.5, 4: 0.2})
    test = _split([1, 1, 0, 0], {0: 0.3, 1: 0.8, 2: 0.45, 3: 0.1})
    point = operating_point(1, "Sick", val, test)
    assert point.threshold == 0.4
    # On validation every positive is caught, and no higher threshold would do that.
    assert (val["probs"][val["labels"] == 1, 1] >= point.threshold).all()
    assert (val["probs"][val["labels"] == 1, 1] < np.nextafter(point.threshold, 1)).any()
    # Test: positives 0.3 (missed) and 0.8 (caught); negatives 0.45 (false alarm) and 0.1.
    assert point.test_confusion == [[1, 1], [1, 1]]
    assert point.test_sensitivity == 0.5 and point.test_specificity == 0.5
    assert operating_point(1, "Sick", _split([0, 0], {0: 0.1, 1: 0.2}), test) is None


def test_roc_and_report_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    probs = rng.dirichlet(np.ones(3), len(labels))
    curves = roc_curves(labels, probs, ["a", "b", "never"])
    assert set(curves) == {"a", "b"}  # no positive of "never": no curve
    assert curves["b"]["auc"] == pytest.approx(skm.roc_auc_score(labels == 1, probs[:, 1]))
    text, report = classification_report(labels, probs, ["a", "b", "never"])
    assert report["b"]["recall"] == pytest.approx(skm.recall_score(labels, probs.argmax(1), labels=[1], average=None)[0])
    assert "never" in text


def test_figures_show_counts_percentages_and_auc() -> None:
    fig = confusion_matrix_figure(np.array([[3, 1], [0, 4]]), ["Normal", "Viral Pneumonia"], "Test")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["3\n75%", "1\n25%", "0\n0%", "4\n100%"]
    roc = roc_figure({"a": {"fpr": np.array([0, 1]), "tpr": np.array([0, 1]), "auc": 0.5}})
    assert "a (AUC 0.500)" in [t.get_text() for t in roc.axes[0].get_legend().texts]
    history = recall_history_figure({"COVID": [(0, 0.5), (1, 0.75)]}, selected_epoch=1)
    assert history.axes[0].lines[0].get_ydata().tolist() == [0.5, 0.75]
