"""The comparison report of multi-label runs: AUROC per finding (NaN labels left out) with the paired
bootstrap, against scikit-learn, and the per-finding summary columns."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from heatlens.report import metrics as M
from heatlens.report.build import build_report, paired_comparison
from heatlens.report.runs import ExplainArrays, RunData, explain_arrays_from_npz
from heatlens.report.tables import ReportOptions, summary_table

FINDINGS = ["Effusion", "Mass", "Nodule"]


def _truth(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 3)) < 0.35).astype(np.float64)
    labels[rng.random((n, 3)) < 0.15] = np.nan
    return labels, rng.random((n, 3))


def _run(run_id: str, labels: np.ndarray, probs: np.ndarray) -> RunData:
    ids = np.array([f"img_{i:03d}.png" for i in range(len(labels))])
    metrics = {f"test/auroc/{f}": M.auroc(labels[:, k], probs[:, k]) for k, f in enumerate(FINDINGS)}
    metrics |= {f"test/ap/{f}": 0.5 for f in FINDINGS} | {"test/ap_macro": 0.5, "test/auroc_macro": 0.7}
    arrays = ExplainArrays(ids=ids, labels=labels, preds=probs.argmax(1), probs=probs, class_names=list(FINDINGS))
    return RunData(run_id=run_id, name=run_id, metrics=metrics, test_hash="same", arrays=arrays)


def test_auroc_matches_sklearn_with_ties_and_unknown_labels() -> None:
    labels, scores = _truth()
    scores = np.round(scores, 1)  # many ties
    for k in range(3):
        known = ~np.isnan(labels[:, k])
        assert M.auroc(labels[:, k], scores[:, k]) == pytest.approx(roc_auc_score(labels[known, k], scores[known, k]))
    assert np.isnan(M.auroc(np.array([1.0, np.nan, 1.0]), np.array([0.1, 0.2, 0.3])))  # no negative
    expected = np.mean([roc_auc_score(labels[~np.isnan(labels[:, k]), k], scores[~np.isnan(labels[:, k]), k])
                        for k in range(3)])
    assert M.auroc_macro(labels, scores) == pytest.approx(expected)


def test_paired_bootstrap_per_finding() -> None:
    labels, noise = _truth()
    informed = np.where(np.isnan(labels), 0.5, labels) * 0.6 + noise * 0.4  # separates every finding
    options = ReportOptions(n_boot=300, paired_metrics=["recall_macro", "aopc_morf"])
    notes: list[str] = []
    results = paired_comparison(_run("good", labels, informed), _run("noise", labels, noise), options, notes)
    by_metric = {r.metric: r for r in results}
    assert list(by_metric) == ["auroc_macro", *(f"auroc/{f}" for f in FINDINGS)]
    for k, finding in enumerate(FINDINGS):
        known = ~np.isnan(labels[:, k])
        result = by_metric[f"auroc/{finding}"]
        assert result.value_a == pytest.approx(roc_auc_score(labels[known, k], informed[known, k]))
        assert result.value_b == pytest.approx(roc_auc_score(labels[known, k], noise[known, k]))
        assert result.difference.low > 0 and result.p_value < 0.05  # the informed run is clearly better
    assert any("recall_macro skipped" in note for note in notes)
    assert any("aopc_morf skipped" in note for note in notes)  # no curves stored: skipped, not a crash
    same = paired_comparison(_run("a", labels, noise), _run("b", labels, noise), options, [])
    assert all(r.difference.estimate == 0 and r.p_value == 1.0 for r in same)
    # Same seed, same numbers.
    again = paired_comparison(_run("good", labels, informed), _run("noise", labels, noise), options, [])
    assert [(r.difference.low, r.p_value) for r in again] == [(r.difference.low, r.p_value) for r in results]


def test_summary_has_auroc_per_finding_and_no_recall_columns() -> None:
    labels, probs = _truth()
    runs = [_run("one", labels, probs), _run("two", labels, probs[::-1].copy())]
    table = summary_table(runs, ReportOptions(n_boot=50))
    assert table.loc[0, "auroc/Mass"] == pytest.approx(M.auroc(labels[:, 1], probs[:, 1]))
    assert {"auroc_macro", "ap_macro"} <= set(table.columns)
    assert not any(c.startswith("recall/") for c in table.columns)
    report = build_report(runs, ReportOptions(n_boot=50, paired_metrics=["recall_macro"]), pair=(runs[0], runs[1]))
    assert [r.metric for r in report.pair][:2] == ["auroc_macro", "auroc/Effusion"]


def test_stored_multilabel_predictions_keep_their_unknown_labels() -> None:
    labels, probs = _truth(6)
    files = {"test_predictions": {"ids": np.array([f"i{i}" for i in range(6)]), "labels": labels, "probs": probs,
                                  "class_names": np.array(FINDINGS)}}
    arrays = explain_arrays_from_npz(files)
    assert arrays.labels.shape == (6, 3) and np.array_equal(arrays.labels, labels, equal_nan=True)


def test_the_written_report_has_the_per_finding_table(tmp_path) -> None:
    from heatlens.report import write_report

    labels, probs = _truth()
    runs = [_run("one", labels, probs), _run("two", labels, probs[::-1].copy())]
    report = build_report(runs, ReportOptions(n_boot=50, paired_metrics=[]), pair=None)
    text = (write_report(report, tmp_path) / "report.md").read_text()
    assert "AUROC per finding" in text and "auroc/Nodule" in text


def test_image_level_sections_show_each_image_with_its_first_positive_finding() -> None:
    from heatlens.report.runs import HeatmapSet

    labels = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [np.nan, 0, 1], [1, 1, 0], [0, 1, 0]])
    rng = np.random.default_rng(1)
    runs = []
    for name in ("one", "two"):
        run = _run(name, labels, rng.random((6, 3)))
        maps = rng.random((6, 3, 4, 4)).astype(np.float32)
        maps[:, 0, :2] += 5  # Effusion's map lights the top half in both runs
        run.arrays.heatmaps = HeatmapSet(run.arrays.ids, maps, labels, (run.arrays.probs >= 0.5).astype(int), None)
        runs.append(run)
    report = build_report(runs, ReportOptions(n_boot=20, max_images=6, paired_metrics=[]))
    panels = [ax for ax in report.figures["side_by_side"].axes if ax.get_label() != "<colorbar>"]
    titles = [ax.get_title() for ax in panels[:5]]  # img_002 has no positive finding: not shown
    assert len(panels) == 2 * 5 and not any("img_002" in t for t in titles)
    assert {t.split("\n")[1] for t in titles} == set(FINDINGS)
    assert set(report.correlations) == set(FINDINGS)
    assert report.correlations["Effusion"].iloc[0, 1] > 0.9  # both runs' Effusion maps agree
