"""The compare entry point against runs made directly in a tmp sqlite MLflow store."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from fake_runs import CLASSES, log_fake_run, make_fake_run
from sklearn.metrics import confusion_matrix
from sweeps import compare_config

from heatlens.cli.compare import compare, main
from heatlens.tracking.query import REPORT_KIND, REPORT_TAG, load_runs, summary_figure_for_run


@pytest.fixture
def two_runs(mlflow_store):
    client, experiment_id, experiment, uri = mlflow_store
    ids = [
        log_fake_run(client, experiment_id, name, make_fake_run(seed), backbone)
        for name, seed, backbone in (("cnn", 0, "simple_cnn"), ("resnet", 1, "resnet50"))
    ]
    return client, experiment_id, experiment, uri, ids


def test_report_numbers_match_what_mlflow_holds(two_runs, tmp_path):
    client, experiment_id, experiment, uri, run_ids = two_runs
    out = compare(
        compare_config(tmp_path / "report", experiment_name=experiment, pair="[cnn,resnet]", **{"bootstrap.n": 300})
    )
    table = pd.read_csv(out / "tables" / "runs.csv")
    assert list(table["run_id"]) == run_ids
    for _, row in table.iterrows():
        logged = client.get_run(row["run_id"]).data.metrics
        assert row["acc"] == pytest.approx(logged["test/acc"])
        assert row["f1_macro"] == pytest.approx(logged["test/f1_macro"])
        for class_name in CLASSES:
            assert row[f"recall/{class_name}"] == pytest.approx(logged[f"test/recall/{class_name}"])
        for order in ("morf", "lerf", "random"):
            assert row[f"aopc_{order}"] == pytest.approx(logged[f"xai/aopc_{order}"], rel=1e-6)
    assert set(table["backbone"]) == {"simple_cnn", "resnet50"}
    paired = pd.read_csv(out / "tables" / "paired_bootstrap.csv").set_index("metric")
    cnn, resnet = (client.get_run(i).data.metrics for i in run_ids)
    assert paired.loc["recall_macro", "A - B"] == pytest.approx(cnn["test/recall_macro"] - resnet["test/recall_macro"])
    # The report is its own MLflow run, tagged so that the next comparison does not list it as a model.
    report_runs = client.search_runs([experiment_id], filter_string=f"tags.`{REPORT_TAG}` = '{REPORT_KIND}'")
    assert len(report_runs) == 1
    artifacts = {a.path for a in client.list_artifacts(report_runs[0].info.run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/figures"} <= artifacts
    assert [r.run_id for r in load_runs(experiment, tracking_uri=uri)] == run_ids


def test_runs_with_other_test_sets_are_refused(mlflow_store, tmp_path):
    client, experiment_id, experiment, _ = mlflow_store
    first = make_fake_run(0)
    other = make_fake_run(1)
    other.ids = np.char.add(other.ids, "_other")
    log_fake_run(client, experiment_id, "a", first)
    log_fake_run(client, experiment_id, "b", other)
    from heatlens.report import CompareError

    with pytest.raises(CompareError, match="test sets differ"):
        compare(compare_config(tmp_path / "r", experiment_name=experiment, pair="[a,b]", log_to_mlflow=False))


def test_cli_reports_bad_input_in_one_line(mlflow_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["heatlens-compare", "experiment_name=nope", f"hydra.run.dir={tmp_path / 'h'}"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "heatlens-compare: error: experiment 'nope' not found" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_bad_pair_and_metric_names_are_refused(two_runs, tmp_path):
    *_, experiment, _, _ = two_runs
    from heatlens.report import CompareError

    with pytest.raises(CompareError, match="exactly two runs"):
        compare(compare_config(tmp_path / "r1", experiment_name=experiment, pair="[cnn]", log_to_mlflow=False))
    with pytest.raises(CompareError, match="unknown paired metric 'auc'"):
        compare(
            compare_config(
                tmp_path / "r2",
                experiment_name=experiment,
                pair="[cnn,resnet]",
                paired_metrics="[auc]",
                log_to_mlflow=False,
            )
        )


def test_only_finished_models_are_compared_and_the_skipped_runs_are_named(mlflow_store, tmp_path):
    client, experiment_id, experiment, uri = mlflow_store
    fake = make_fake_run(0)
    parent = log_fake_run(client, experiment_id, "sweep", fake, tags={"heatlens.kind": "sweep"})
    kept = [
        log_fake_run(client, experiment_id, "plain", fake),
        # A sweep trial is an MLflow child of the sweep's parent run: still a model to compare.
        log_fake_run(client, experiment_id, "trial-0", fake, tags={"mlflow.parentRunId": parent}),
    ]
    skipped = {
        log_fake_run(client, experiment_id, "trial-1", fake, status="KILLED",
                     tags={"mlflow.parentRunId": parent, "pruned": "true"}): "pruned, KILLED",
        log_fake_run(client, experiment_id, "crashed", fake, status="FAILED"): "FAILED",
        log_fake_run(client, experiment_id, "killed-in-test", fake, status="RUNNING"): "RUNNING",
        parent: "sweep parent run",
    }
    # Left out silently: a re-explained child run and the report's own run.
    log_fake_run(client, experiment_id, "plain-explain", fake, tags={"mlflow.parentRunId": kept[0],
                                                                     "explained_checkpoint": "checkpoints/x.ckpt"})
    log_fake_run(client, experiment_id, "compare", fake, tags={REPORT_TAG: REPORT_KIND})
    lines = []
    runs = load_runs(experiment, tracking_uri=uri, on_skipped=lines.append)
    assert [r.run_id for r in runs] == kept
    assert len(lines) == 1 and lines[0].startswith("skipped 4 run(s) that are not finished models: ")
    for run_id, reason in skipped.items():
        assert f"({run_id[:6]}, {reason})" in lines[0]
    named = load_runs(run_ids=[kept[0], next(iter(skipped))], tracking_uri=uri, on_skipped=lines.append)
    assert [r.run_id for r in named] == [kept[0]] and "trial-1" in lines[-1]
    assert [r.run_id for r in load_runs(experiment, tracking_uri=uri, include_unfinished=True,
                                        on_skipped=lines.append)] == [*kept, *list(skipped)[:3]]


def test_test_set_hash_falls_back_to_the_logged_test_set_file(mlflow_store, tmp_path):
    client, experiment_id, experiment, uri = mlflow_store
    run_id = log_fake_run(client, experiment_id, "a", make_fake_run(0))
    client.delete_tag(run_id, "test_hash")
    client.log_dict(run_id, {"hash": "ab" * 32, "count": 40, "ids": []}, "reports/test_set.json")
    (run,) = load_runs(experiment, tracking_uri=uri)
    assert run.test_hash == "ab" * 32


def test_summary_figure_of_a_logged_run(mlflow_store):
    client, experiment_id, experiment, uri = mlflow_store
    fake = make_fake_run(0)
    run_id = log_fake_run(client, experiment_id, "a", fake, thumbnails=True)
    figure = summary_figure_for_run(client, run_id)
    assert figure._suptitle.get_text() == "a (simple_cnn, phantom)"
    confusion_ax = next(ax for ax in figure.axes if ax.get_title() == "Test confusion matrix")
    expected = confusion_matrix(fake.labels, fake.preds, normalize="true")
    np.testing.assert_allclose(confusion_ax.images[0].get_array(), expected)
    overlays = [ax for ax in figure.axes if ax.get_title().startswith("true ")]
    assert len(overlays) == len(CLASSES) and all(len(ax.images) == 2 for ax in overlays)
    texts = {t.get_text() for ax in figure.axes for t in ax.texts}
    assert f"{client.get_run(run_id).data.metrics['test/acc']:.3f}" in texts
