"""`python train.py -m hparams_search=optuna` on tiny phantom data: a killed sweep continued, two
sweep processes sharing a study, pruned trials, the parent run, the freeze question."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from in_process import Result, run_main
from stores import sqlite_store
from tiny import wait_until

from heatlens.cli.train import main as train_main
from heatlens.paths import PROJECT_ROOT
from heatlens.sweep.study import MLFLOW_RUN_ID

pytestmark = pytest.mark.slow

TINY = [
    "data.num_images=80", "data.image_size=32", "data.source_size=48", "trainer.max_epochs=2",
    "explain=none", "callbacks=none", "backbone.width=4", "logger.figures=false",
]


def command(out: Path, experiment: str, *overrides: str) -> list[str]:
    return [
        sys.executable, str(PROJECT_ROOT / "train.py"), "-m", "hparams_search=optuna", *TINY,
        f"logger.experiment_name={experiment}", f"hydra.sweep.dir={out / 'sweep'}", *overrides,
    ]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def run_here(out: Path, experiment: str, *overrides: str, tracking_uri: str | None = None) -> Result:
    """The sweep in this process (tests/in_process.py); a sweep a test signals is a subprocess (`start`)."""
    env = {"MLFLOW_TRACKING_URI": tracking_uri} if tracking_uri else {}
    return run_main(train_main, *command(out, experiment, *overrides)[2:], env=env)


def start(out: Path, experiment: str, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(command(out, experiment, *overrides), env=environment(), cwd=out,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def tail(result) -> str:
    return (result.stdout + result.stderr)[-4000:]


def load(journal: Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=name, storage=storage)


def runs(experiment: str, tracking_uri: str | None = None) -> tuple[list, list]:
    """(sweep parent runs, trial runs) of an experiment."""
    client = MlflowClient(tracking_uri or os.environ["MLFLOW_TRACKING_URI"])
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in found if r.data.tags.get("heatlens.kind") == "sweep"]
    return parents, [r for r in found if r not in parents]


def test_a_killed_three_trial_sweep_run_again_ends_with_three_finished_trials(tmp_path) -> None:
    experiment, journal = "sweep-e2e-resume", tmp_path / "optuna.journal"
    args = ["hydra.sweeper.n_trials=3", f"hydra.sweeper.storage={journal}", "hydra.sweeper.study_name=resume"]

    def complete() -> int:
        if not journal.exists():
            return 0
        try:
            return sum(t.state == TrialState.COMPLETE for t in load(journal, "resume").trials)
        except KeyError:  # the journal exists, the study is not recorded in it yet
            return 0

    worker = start(tmp_path, experiment, *args)
    try:
        wait_until(lambda: complete() >= 1, timeout=600, what="the first trial")
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=300)[0]
    finally:
        worker.kill()
    assert worker.returncode != 0, output[-4000:]
    assert complete() < 3
    # SIGTERM: the worker handed its running trial back and ended its parent run KILLED.
    assert TrialState.RUNNING not in {t.state for t in load(journal, "resume").trials}
    (killed_parent,), _ = runs(experiment)
    assert killed_parent.info.status == "KILLED"

    again = run_here(tmp_path, experiment, *args)  # the killed run was the subprocess
    assert again.returncode == 0, tail(again)
    study = load(journal, "resume")
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 3
    assert all(t.state == TrialState.FAIL for t in study.trials if t not in finished)  # handed back, run again

    (parent,), trial_runs = runs(experiment)
    assert parent.info.run_id == killed_parent.info.run_id  # the sweep run again continued it
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    by_id = {r.info.run_id: r for r in trial_runs}
    for trial in finished:
        child = by_id[trial.user_attrs[MLFLOW_RUN_ID]]
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.params["trial.number"] == str(trial.number)
        assert float(child.data.params["optimizer.lr"]) == pytest.approx(trial.params["optimizer.lr"])
        # The study's value is the selected epoch's validation value of selection_metric.
        history = [m.value for m in client.get_metric_history(child.info.run_id, "val/recall_macro")]
        assert any(v == pytest.approx(trial.value) for v in history) and "backbone.freeze" not in trial.params
    interrupted = [r for r in trial_runs if r.info.run_id not in {t.user_attrs[MLFLOW_RUN_ID] for t in finished}]
    assert all(r.info.status in ("KILLED", "FAILED") and "pruned" not in r.data.tags for r in interrupted)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best_value"] == max(t.value for t in finished)
    assert parent.data.tags["best_trial"] == str(study.best_trial.number)
    assert parent.data.tags["best_run_id"] == study.best_trial.user_attrs[MLFLOW_RUN_ID]
    assert parent.data.tags["study_storage"] == str(journal)
    figures = {a.path for a in client.list_artifacts(parent.info.run_id, "figures/sweep")}
    # Importances need completed trials whose values differ (a tiny model may score chance in all).
    expected = {"optimization_history"} | ({"param_importances"} if len({t.value for t in finished}) > 1 else set())
    assert figures == {f"figures/sweep/{name}.png" for name in expected}


def test_two_sweep_processes_started_together_share_one_study(tmp_path) -> None:
    experiment, journal = "sweep-e2e-workers", tmp_path / "optuna.journal"
    args = ["hydra.sweeper.n_trials=4", f"hydra.sweeper.storage={journal}", "hydra.sweeper.study_name=workers"]
    workers = [start(tmp_path, experiment, *args) for _ in range(2)]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-4000:]
    study = load(journal, "workers")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    (parent,), trial_runs = runs(experiment)
    assert sorted(int(r.data.params["trial.number"]) for r in trial_runs) == [0, 1, 2, 3]
    assert {r.info.run_id for r in trial_runs} == {t.user_attrs[MLFLOW_RUN_ID] for t in study.trials}
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trial_runs)


def test_pruned_trials_end_killed_and_tagged_with_their_checkpoints_kept(tmp_path) -> None:
    experiment = "sweep-e2e-pruned"
    tracking_uri = sqlite_store(tmp_path / "store")
    # recall_macro <= 1 never reaches 2: every trial is pruned after its first epoch.
    result = run_here(tmp_path, experiment, "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=pruned",
                      "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:2.0}",
                      tracking_uri=tracking_uri)
    assert result.returncode == 0, tail(result)
    # storage=null: the study sits beside the MLflow store.
    study = load(tmp_path / "store" / "optuna.journal", "pruned")
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert [list(t.intermediate_values) for t in study.trials] == [[0], [0]]
    (parent,), trial_runs = runs(experiment, tracking_uri)
    for run_ in trial_runs:
        assert run_.info.status == "KILLED" and run_.data.tags["pruned"] == "true"
        assert "error" not in run_.data.tags and "test/acc" not in run_.data.metrics
        assert list(Path(run_.data.tags["output_dir"], "checkpoints").glob("*.ckpt"))
    assert parent.data.metrics["sweep/n_pruned"] == 2 and "best_value" not in parent.data.metrics


def test_freezing_is_not_searched_for_a_backbone_trained_from_scratch(tmp_path) -> None:
    result = run_main(train_main, "-m", "hparams_search=optuna_pretrained", f"hydra.sweep.dir={tmp_path}",
                      f"hydra.sweeper.storage={tmp_path / 'optuna.journal'}")
    assert result.returncode != 0
    assert "hydra.sweeper.params.backbone.freeze: backbone=simple_cnn has no pretrained weights" in result.stderr
    assert not (tmp_path / "optuna.journal").exists()
