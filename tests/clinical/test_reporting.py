"""The clinical evaluation of one run (names, thresholds, intervals), its figures, headline rows and the
comparison report's paired calibration columns, on constructed predictions."""

import json

import numpy as np
import pytest
from scipy.special import softmax

from heatlens.clinical import (
    ClinicalSettings,
    apply_temperature,
    binary_rates,
    calibration_summary,
    choose_threshold,
    clinical_evaluation,
    parse_rule,
    reliability_bins,
    risk_coverage,
)
from heatlens.plots.calibration import reliability_figure, risk_coverage_figure
from heatlens.report.build import paired_comparison
from heatlens.report.headline import clinical_rows
from heatlens.report.runs import ExplainArrays, RunData
from heatlens.report.tables import ReportOptions, summary_table

CLASSES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]


def split(n: int, temperature: float, seed: int) -> dict[str, np.ndarray]:
    """Labels drawn from softmax(z); probabilities softmax(z * temperature) (over-confident for T > 1)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, size=(n, len(CLASSES)))
    labels = np.array([rng.choice(len(CLASSES), p=p) for p in softmax(logits, axis=1)])
    return {"labels": labels, "probs": softmax(logits * temperature, axis=1)}


@pytest.fixture(scope="module")
def evaluated():
    test, val = split(400, 3.0, seed=1), split(600, 3.0, seed=2)
    test["tta_probs"] = softmax(np.log(test["probs"]) / 2, axis=1)
    settings = ClinicalSettings(operating_point=parse_rule("sensitivity@0.9"), n_boot=300)
    return test, val, clinical_evaluation(test, val, CLASSES, "Normal", settings, seed=0)


def test_names_temperature_and_calibrated_metrics(evaluated):
    test, val, result = evaluated
    metrics = result.metrics
    assert result.temperature == pytest.approx(3.0, rel=0.2)
    assert metrics["test/ece"] == calibration_summary(test["probs"], test["labels"]).ece
    calibrated = apply_temperature(test["probs"], result.temperature)
    assert metrics["test/calibrated/ece"] == calibration_summary(calibrated, test["labels"]).ece
    assert metrics["test/calibrated/ece"] < metrics["test/ece"]
    assert metrics["test/tta/acc"] == np.mean(test["tta_probs"].argmax(1) == test["labels"])
    assert metrics["test/aurc"] == risk_coverage(test["probs"].max(1), test["probs"].argmax(1) == test["labels"]).aurc
    for name in CLASSES:
        assert {f"test/ece_ovr/{name}", f"test/calibrated/brier_ovr/{name}"} <= set(metrics)
    # A metric name is never also the folder of others (MLflow's file store keeps each in a file).
    assert not {key.rsplit("/", 1)[0] for key in metrics} & set(metrics)
    json.dumps(result.report)


def test_operating_points_are_chosen_on_calibrated_validation_and_applied_to_test(evaluated):
    test, val, result = evaluated
    assert set(result.thresholds) == {"COVID", "Lung_Opacity", "Viral Pneumonia"}  # no point for the healthy class
    val_calibrated = apply_temperature(val["probs"], result.temperature)
    test_calibrated = apply_temperature(test["probs"], result.temperature)
    for k, name in enumerate(CLASSES):
        if name == "Normal":
            continue
        threshold = choose_threshold(val_calibrated[:, k], val["labels"] == k, parse_rule("sensitivity@0.9"))
        assert result.thresholds[name] == threshold
        rates = binary_rates(test_calibrated[:, k], test["labels"] == k, threshold)
        for rate in ("sensitivity", "specificity", "ppv", "npv"):
            assert result.metrics[f"test/op_{rate}/{name}"] == rates[rate]
            assert result.metrics[f"test/op_{rate}_low/{name}"] <= rates[rate] <= result.metrics[
                f"test/op_{rate}_high/{name}"]
        assert result.metrics[f"test/auroc_low/{name}"] < result.metrics[f"test/auroc_high/{name}"]


def test_without_calibration_the_raw_probabilities_decide():
    test, val = split(200, 2.0, seed=3), split(200, 2.0, seed=4)
    result = clinical_evaluation(test, val, CLASSES, None, ClinicalSettings(calibration="none", n_boot=100))
    assert result.temperature is None and "val/temperature" not in result.metrics
    assert not any(key.startswith("test/calibrated/") for key in result.metrics)
    assert result.thresholds["COVID"] == val["probs"][val["labels"] == 0, 0].min()  # no_false_negative


def test_reliability_figure_shows_bin_counts_and_risk_coverage_its_area(evaluated):
    test, _, result = evaluated
    panels = {panel: [(label, bins, colour) for (label, bins), colour in zip(series, ("tab:red", "tab:blue"))]
              for panel, series in result.reliability.items()}
    figure = reliability_figure(panels)
    assert len(figure.axes) == 2 * len(panels)  # a diagram and its counts per panel
    top = reliability_bins(test["probs"].max(1), test["probs"].argmax(1) == test["labels"], 15)
    shown = [int(t.get_text()) for t in figure.axes[1].texts]
    assert shown == [int(c) for c in top.count if c]
    curve = risk_coverage_figure(result.risk)
    labels = [t.get_text() for t in curve.axes[0].get_legend().texts]
    assert f"uncalibrated (AURC {result.risk['uncalibrated'].aurc:.3f})" in labels


def test_headline_rows_show_calibrated_ece_and_intervals(evaluated):
    _, _, result = evaluated
    rows = clinical_rows(result.metrics)
    assert rows[0].label.startswith("test ECE, temperature")
    assert rows[0].reference == f"uncalibrated {result.metrics['test/ece']:.3f}"
    covid = next(row for row in rows if row.label == "COVID sensitivity (op)")
    low, high = result.metrics["test/op_sensitivity_low/COVID"], result.metrics["test/op_sensitivity_high/COVID"]
    assert covid.formatted() == f"{result.metrics['test/op_sensitivity/COVID']:.2f} [{low:.2f}, {high:.2f}]"
    assert covid.reference.startswith("specificity ")


def run_data(name: str, split_: dict[str, np.ndarray], temperature: float | None) -> RunData:
    ids = np.array([f"img{i:04d}" for i in range(len(split_["labels"]))])
    arrays = ExplainArrays(ids=ids, labels=split_["labels"], preds=split_["probs"].argmax(1), probs=split_["probs"],
                           class_names=CLASSES)
    metrics = {} if temperature is None else {"val/temperature": temperature}
    return RunData(f"{name}-id-0123456789", name, metrics=metrics, test_hash="same", arrays=arrays)


def test_paired_calibration_between_runs():
    calibrated, overconfident = split(300, 1.0, seed=5), split(300, 1.0, seed=5)
    overconfident = {**overconfident, "probs": apply_temperature(overconfident["probs"], 1 / 3)}
    options = ReportOptions(n_boot=300, paired_metrics=("ece", "ece_calibrated", "brier", "nll"))
    a, b = run_data("over", overconfident, 3.0), run_data("cal", calibrated, 1.0)
    results = {r.metric: r for r in paired_comparison(a, b, options)}
    expected = (calibration_summary(overconfident["probs"], overconfident["labels"]).ece
                - calibration_summary(calibrated["probs"], calibrated["labels"]).ece)
    assert results["ece"].difference.estimate == pytest.approx(expected)
    assert results["ece"].difference.low > 0 and results["nll"].difference.low > 0
    # Each run's own temperature undoes the over-confidence: no calibrated difference left.
    assert results["ece_calibrated"].difference.estimate == pytest.approx(0.0, abs=1e-9)
    notes: list[str] = []
    paired_comparison(a, run_data("plain", calibrated, None), options, notes=notes)
    assert any("fitted no temperature" in note for note in notes)


def test_summary_table_has_calibration_and_operating_point_columns(evaluated):
    _, _, result = evaluated
    recalls = {f"test/recall/{name}": 0.5 for name in CLASSES}  # where a run without arrays finds its classes
    run = RunData("r-id-0123456789", "r", metrics=result.metrics | recalls)
    row = summary_table([run], ReportOptions()).iloc[0]
    assert row["ece"] == result.metrics["test/ece"] and row["ece_calibrated"] == result.metrics["test/calibrated/ece"]
    assert row["op_sensitivity_low/COVID"] == result.metrics["test/op_sensitivity_low/COVID"]
