"""Post-test evaluation: ROC/report against scikit-learn, readable figures (operating points: tests/clinical)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from heatlens.models.evaluation import classification_report, roc_curves
from heatlens.plots.training import confusion_matrix_figure, recall_history_figure, roc_figure


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
    assert "a (AUROC 0.500)" in [t.get_text() for t in roc.legends[0].texts]
    history = recall_history_figure({"COVID": [(0, 0.5), (1, 0.75)]}, selected_epoch=1)
    assert history.axes[0].lines[0].get_ydata().tolist() == [0.5, 0.75]
