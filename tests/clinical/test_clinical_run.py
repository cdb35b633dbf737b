"""`python train.py` (in process) on a tiny phantom set logs the clinical numbers; each equals a recomputation from the
run's stored predictions, and the served model returns calibrated probabilities and decisions."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from in_process import Result, run_main
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient

from heatlens.clinical import apply_temperature, calibration_summary, parse_rule, risk_coverage
from heatlens.cli.train import main as train_main

pytestmark = pytest.mark.slow

CLASSES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
TINY = ["data.num_images=80", "data.image_size=32", "data.source_size=48", "data.batch_size=16",
        "trainer.max_epochs=2", "explain=none", "callbacks=none"]


def train(*overrides: str, experiment: str) -> Result:
    """`python train.py ...` in this process (tests/in_process.py)."""
    return run_main(train_main, *TINY, f"logger.experiment_name={experiment}", *overrides)


@pytest.fixture(scope="module")
def clinical_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clinical")
    result = train(f"hydra.run.dir={out}", "clinical.tta=flips", "clinical.operating_point=sensitivity@0.9",
                   "clinical.n_boot=200", experiment="clinical-e2e")
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("clinical-e2e").experiment_id])
    return run


def artifact(run_id: str, path: str, tmp_path: Path) -> Path:
    return Path(download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(tmp_path)))


def test_logged_calibration_equals_the_stored_predictions(clinical_run, tmp_path):
    metrics, run_id = clinical_run.data.metrics, clinical_run.info.run_id
    stored = np.load(artifact(run_id, "reports/test_predictions.npz", tmp_path))
    probs, labels = stored["probs"], stored["labels"]
    for key, value in calibration_summary(probs, labels).to_dict().items():
        assert metrics[f"test/{key}"] == pytest.approx(value, abs=1e-9)
    temperature = metrics["val/temperature"]
    calibrated = apply_temperature(probs, temperature)
    assert metrics["test/calibrated/nll"] == pytest.approx(calibration_summary(calibrated, labels).nll, abs=1e-6)
    assert metrics["test/aurc"] == pytest.approx(risk_coverage(probs.max(1), probs.argmax(1) == labels).aurc)
    for name in CLASSES:
        assert f"test/ece_ovr/{name}" in metrics and f"test/calibrated/brier_ovr/{name}" in metrics
    assert {"test/tta/acc", "test/tta/ece", "test/tta/aurc"} <= set(metrics)


def test_operating_points_have_intervals_and_figures(clinical_run, tmp_path):
    metrics, run_id = clinical_run.data.metrics, clinical_run.info.run_id
    report = yaml.safe_load(artifact(run_id, "reports/clinical.json", tmp_path).read_text())
    assert report["operating_point"] == str(parse_rule("sensitivity@0.9")) and report["probabilities"] == "calibrated"
    assert report["operating_points"], "no class had an operating point"
    for point in report["operating_points"]:
        name = point["class_name"]
        assert metrics[f"val/op_threshold/{name}"] == pytest.approx(point["threshold"])
        for rate in ("sensitivity", "specificity", "ppv", "npv"):
            low, high = metrics.get(f"test/op_{rate}_low/{name}"), metrics.get(f"test/op_{rate}_high/{name}")
            if low is not None:
                assert low <= metrics[f"test/op_{rate}/{name}"] <= high
        (tn, fp), (fn, tp) = point["test_confusion"]
        assert metrics[f"test/op_sensitivity/{name}"] == pytest.approx(tp / (tp + fn))
    for figure in ("figures/calibration/reliability.png", "figures/risk_coverage.png",
                   f"figures/operating_points/{report['operating_points'][0]['class_name'].replace(' ', '_')}.png"):
        assert artifact(run_id, figure, tmp_path).read_bytes()[:4] == b"\x89PNG"


def test_served_model_returns_calibrated_probabilities_and_decisions(clinical_run):
    model = mlflow.pyfunc.load_model(clinical_run.data.tags["model_uri"])
    assert model.model_config["temperature"] == pytest.approx(clinical_run.data.metrics["val/temperature"])
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 40), dtype=np.uint8) for _ in range(3)]
    table = model.predict({"image": images}, params={"return_decisions": True})
    np.testing.assert_allclose(table[CLASSES].sum(1), 1.0, atol=1e-6)
    decided = [c[: -len("_decision")] for c in table.columns if c.endswith("_decision")]
    assert decided, "no decision column"
    metrics = clinical_run.data.metrics
    for name in decided:
        expected = table[name] >= metrics[f"val/op_threshold/{name}"] - 1e-9
        assert (table[f"{name}_decision"] == expected).all()
    plain = model.predict({"image": images})
    assert not any(c.endswith("_decision") for c in plain.columns)


def test_a_wrong_clinical_option_is_one_line(tmp_path):
    result = train(f"hydra.run.dir={tmp_path}", "clinical.operating_point=recall@0.9", experiment="clinical-bad")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "error: clinical.operating_point='recall@0.9': expected one of" in result.stderr.strip().splitlines()[-1]
