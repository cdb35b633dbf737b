"""What a run's MLflow page shows: each parameter once, a description, the three datasets, a degenerate model
named (tag, end-of-run line, comparison report), and no correlation section for a single run."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST

from heatlens.data.splits import ids_hash
from heatlens.report import ReportOptions, build_report
from heatlens.report.runs import DEGENERATE_TAG, ExplainArrays, RunData, degenerate_note
from heatlens.report.writer import write_report
from heatlens.tracking import RunHandle, run_location
from heatlens.tracking.describe import NOTE_TAG, describe_run, flag_degenerate, log_datasets

CLASSES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]


def test_each_parameter_once_a_description_and_three_datasets(trained_run, tmp_path) -> None:
    run = trained_run.client.get_run(trained_run.run_id)
    params = run.data.params
    # Only heatlens' Hydra-style keys: MLflow's flattening of the served model's config (`backbone/name`)
    # would repeat `backbone.name`.
    assert "backbone.name" in params and not [key for key in params if "/" in key]
    note = run.data.tags[NOTE_TAG]
    assert note.startswith("**simple_cnn** on **phantom** (510 generated phantom images): multiclass, up to 8 "
                           "epochs, seed 42")
    assert f"| test accuracy | {run.data.metrics['test/acc']:.3f} |" in note
    assert f"| AOPC MoRF | {run.data.metrics['xai/aopc_morf']:.3f} |" in note
    datasets = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert sorted(datasets) == ["test", "train", "val"]
    assert datasets["test"].dataset.digest == run.data.tags["test_hash"][:36]
    assert {name: d.tags[0].value for name, d in datasets.items()} == {"train": "train", "val": "val", "test": "test"}
    # The degenerate tag agrees with the run's own predictions, counted here.
    saved = trained_run.npz("reports/test_predictions.npz", tmp_path)
    predicted, present = np.unique(saved["probs"].argmax(axis=1)), np.unique(saved["labels"])
    assert (DEGENERATE_TAG in run.data.tags) == (len(predicted) < len(present))


def test_degenerate_note_counts_predicted_classes() -> None:
    labels = np.array([0, 1, 2, 3, 0, 1])
    assert degenerate_note(labels, np.full(6, 2), CLASSES) == ("predicts 1 of 4 classes on the test set "
                                                               "(only Normal)")
    assert degenerate_note(labels, np.array([0, 0, 2, 3, 3, 2]), CLASSES) == (
        "predicts 3 of 4 classes on the test set (only COVID, Normal, Viral Pneumonia)")
    assert degenerate_note(labels, np.array([1, 0, 2, 3, 0, 1]), CLASSES) is None
    # Predicting every class present is not degenerate, even when the test set lacks a class.
    assert degenerate_note(np.array([0, 0, 1]), np.array([1, 0, 1]), CLASSES) is None
    assert degenerate_note(np.ones((3, 4)), np.zeros(3), CLASSES) is None  # multi-label: not asked


def test_degenerate_run_is_tagged_described_and_named_at_the_end(run: RunHandle) -> None:
    labels = np.array([0, 1, 2, 3])
    probs = np.tile([0.1, 0.2, 0.6, 0.1], (4, 1))
    note = flag_degenerate(run, labels, probs, CLASSES)
    run.log_params({"backbone.name": "vgg16", "data.num_images": 40, "trainer.max_epochs": 3, "seed": 1})
    run.log_metrics({"test/acc": 0.25, "test/recall_macro": 0.25})
    log_datasets(run, {"train": ["a", "b"], "val": ["c"], "test": ["d", "e"]}, None, {"num_images": 40})
    describe_run(run)
    data = run.client.get_run(run.run_id)
    assert data.data.tags[DEGENERATE_TAG] == note == "predicts 1 of 4 classes on the test set (only Normal)"
    assert f"**Warning:** the model {note}." in data.data.tags[NOTE_TAG]
    assert "| test macro recall | 0.250 |" in data.data.tags[NOTE_TAG]
    digests = {d.dataset.name: d.dataset.digest for d in data.inputs.dataset_inputs}
    assert digests == {"train": ids_hash(["a", "b"])[:36], "val": ids_hash(["c"])[:36],
                       "test": ids_hash(["d", "e"])[:36]}
    assert run_location(run).endswith(f"Warning: the model {note} (tag {DEGENERATE_TAG})")


# What MLflow's store raised when two jobs of a parallel sweep created the same dataset at once (seen in
# tests/tracking/test_tracking_server.py, its sqlite store behind `mlflow server`).
RACE = ("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, datasets.digest\n"
        "[SQL: INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, ...)]")


def test_datasets_created_meanwhile_by_another_run_are_linked(experiment) -> None:
    client, experiment_id, _ = experiment
    first, second = (RunHandle(os.environ["MLFLOW_TRACKING_URI"], client.create_run(experiment_id).info.run_id)
                     for _ in range(2))
    splits = {"train": ["a", "b"], "test": ["c"]}
    log_datasets(first, splits, None, {"num_images": 3})
    calls = []
    log_inputs = second.client.log_inputs

    def lost_the_race(run_id, datasets=None, **kwargs):  # the other job's insert came first: rolled back
        calls.append(run_id)
        if len(calls) == 1:
            raise MlflowException(RACE, error_code=BAD_REQUEST)
        return log_inputs(run_id, datasets=datasets, **kwargs)

    second.client.log_inputs = lost_the_race
    log_datasets(second, splits, None, {"num_images": 3})
    assert calls == [second.run_id] * 2
    one, two = (client.get_run(r.run_id).inputs.dataset_inputs for r in (first, second))
    assert sorted((d.dataset.name, d.dataset.digest) for d in two) == sorted((d.dataset.name, d.dataset.digest)
                                                                               for d in one)


def test_any_other_store_error_on_datasets_is_raised(run) -> None:
    def refused(run_id, datasets=None, **kwargs):
        raise MlflowException("Param value too long", error_code=BAD_REQUEST)

    run.client.log_inputs = refused
    with pytest.raises(MlflowException, match="too long"):
        log_datasets(run, {"test": ["c"]}, None, {"num_images": 1})


def _run(name: str, preds: list[int], tags: dict[str, str] | None = None) -> RunData:
    ids = np.array([f"img{i}" for i in range(4)])
    arrays = ExplainArrays(ids=ids, labels=np.array([0, 1, 2, 3]), preds=np.array(preds), class_names=CLASSES)
    metrics = {"test/acc": float(np.mean(np.array(preds) == np.arange(4))), "test/recall_macro": 0.25}
    return RunData(run_id=f"{name:0<32}", name=name, metrics=metrics, tags=tags or {}, test_hash="h", arrays=arrays)


def test_report_names_the_degenerate_run_beside_its_row(tmp_path: Path) -> None:
    tagged = _run("tagged", [0, 1, 2, 3], {DEGENERATE_TAG: "predicts 1 of 4 classes on the test set (only COVID)"})
    constant = _run("constant", [2, 2, 2, 2])  # logged before the tag: found from its predictions
    healthy = _run("healthy", [0, 1, 2, 3])
    report = build_report([tagged, constant, healthy], ReportOptions(n_boot=20))
    markdown = (write_report(report, tmp_path) / "report.md").read_text()
    table = markdown.split("## Runs: classification on the test set")[1].split("##")[0]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "(only COVID)" in rows[tagged.label] and "(only Normal)" in rows[constant.label]
    assert "predicts" not in rows[healthy.label]
    assert sum(note.startswith((tagged.label, constant.label)) for note in report.notes) == 2
    runs_csv = pd.read_csv(io.StringIO((tmp_path / "tables" / "runs.csv").read_text()))
    assert runs_csv["warning"].fillna("").astype(bool).tolist() == [True, True, False]


def test_one_run_gets_no_correlation_section(tmp_path: Path) -> None:
    report = build_report([_run("alone", [0, 1, 2, 3])], ReportOptions(n_boot=20))
    markdown = (write_report(report, tmp_path) / "report.md").read_text()
    assert report.correlations == {} and "heatmap_correlation" not in report.figures
    assert "Correlation" not in markdown
