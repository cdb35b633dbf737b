"""Sweeps through train.py: a 2-trial Optuna search run as 2 parallel joblib jobs and the comparison
report on the real runs of the search (a sweep with a failing job: test_train_e2e)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from sweeps import TINY, compare_config, tail, train

from heatlens.cli.compare import compare

pytestmark = pytest.mark.slow


def runs_of(client, experiment_name):
    """The training runs of an experiment (a sweep's parent run, tag heatlens.kind=sweep, left out)."""
    experiment = client.get_experiment_by_name(experiment_name)
    assert experiment is not None, f"no MLflow experiment {experiment_name!r}"
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [r for r in runs if r.data.tags.get("heatlens.kind") != "sweep"]


@pytest.fixture(scope="module")
def optuna_search(mlflow_root, tmp_path_factory):
    client, uri, _ = mlflow_root
    out = tmp_path_factory.mktemp("optuna")
    # Both trials asked at once and run by the joblib launcher in two processes.
    result = train(
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.n_jobs=2",
            "hydra/launcher=parallel",
            "logger.experiment_name=optuna_search",
            *TINY,
        ],
        uri,
        out,
    )
    assert result.returncode == 0, tail(result)
    return client, uri, out, result, runs_of(client, "optuna_search")


def test_optuna_search_runs_two_parallel_trials_and_maximises_the_returned_metric(optuna_search):
    client, _, out, result, runs = optuna_search
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert len({r.data.tags["sweep_id"] for r in runs}) == 1
    for run in runs:
        params = run.data.params
        assert 1e-5 <= float(params["optimizer.lr"]) <= 1e-2
        assert 1e-6 <= float(params["optimizer.weight_decay"]) <= 1e-2
        assert params["data.batch_size"] in {"16", "32", "64"}
    assert runs[0].data.params["optimizer.lr"] != runs[1].data.params["optimizer.lr"]
    results = yaml.safe_load((out / "sweep" / "optimization_results.yaml").read_text())
    # The task returns the best validation value of selection_metric; Optuna keeps the larger one.
    metric = runs[0].data.params["selection_metric"]
    best_per_run = [max(m.value for m in client.get_metric_history(r.info.run_id, metric)) for r in runs]
    assert results["best_value"] == pytest.approx(max(best_per_run))


def test_compare_report_on_the_real_runs_matches_mlflow(optuna_search, tmp_path):
    client, uri, _, _, runs = optuna_search
    pair = f"[{runs[0].info.run_id},{runs[1].info.run_id}]"
    cfg = compare_config(tmp_path / "report", experiment_name="optuna_search", tracking_uri=uri,
                         pair=pair, **{"bootstrap.n": 300})
    out = compare(cfg)
    table = pd.read_csv(out / "tables" / "runs.csv").set_index("run_id")
    for run in runs:
        row, logged = table.loc[run.info.run_id], run.data.metrics
        for column, key in [
            ("acc", "test/acc"),
            ("recall_macro", "test/recall_macro"),
            ("f1_macro", "test/f1_macro"),
            ("size_mb", "model/size_mb"),
            ("recall/COVID", "test/recall/COVID"),
        ]:
            assert row[column] == pytest.approx(logged[key]), column
        # Recomputed from the stored perturbation curves: the same AOPC the callbacks logged.
        for order in ("morf", "lerf", "random"):
            assert row[f"aopc_{order}"] == pytest.approx(logged[f"xai/aopc_{order}"], rel=1e-4, abs=1e-6)
    paired = pd.read_csv(out / "tables" / "paired_bootstrap.csv").set_index("metric")
    first, second = (r.data.metrics for r in runs)
    # Paired over the whole test set from the stored predictions: the logged torchmetrics values.
    assert paired.loc["recall_macro", "A"] == pytest.approx(first["test/recall_macro"], abs=1e-6)
    assert paired.loc["f1_macro", "B"] == pytest.approx(second["test/f1_macro"], abs=1e-6)
    assert (out / "figures" / "side_by_side.png").exists()
    assert (out / "figures" / "perturbation_curves.png").exists()
