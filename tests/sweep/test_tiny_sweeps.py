"""The sweeper end to end on a tiny Hydra app (no training): persistence across a killed run, workers
sharing one study, pruning through the joblib and submitit launchers, failures, bad search spaces."""

from __future__ import annotations

import os
import signal

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from tiny import backdate_heartbeats, jobs_per_trial, ledger, run, start, study, sweep_runs, wait_until

from heatlens.sweep.study import ABANDONED, FAILURE, HEARTBEAT

pytestmark = pytest.mark.slow


def states(tmp_path) -> list[TrialState]:
    return [t.state for t in study(tmp_path).trials]


def complete(tmp_path) -> int:
    try:
        return states(tmp_path).count(TrialState.COMPLETE)
    except KeyError:  # the journal exists, the study is not recorded in it yet
        return 0


def test_a_killed_sweep_run_again_finishes_the_same_study(tmp_path) -> None:
    # SIGKILL: the worker cannot hand its trial back, so the heartbeat must find it abandoned.
    # The graceful SIGTERM path is test_sweep_e2e's killed sweep.
    experiment = "tiny-kill"
    # A long heartbeat interval: no beat can be late on a loaded machine; the lost trial's last beat is
    # moved back in time below instead of waiting for it to grow stale.
    args = ["hydra.sweeper.n_trials=3", "epoch_seconds=0.4", "hydra.sweeper.heartbeat_interval=30",
            f"logger.experiment_name={experiment}"]
    worker = start(tmp_path, *args)
    try:
        wait_until(lambda: (tmp_path / "optuna.journal").exists() and complete(tmp_path) >= 1, what="first trial")
        worker.send_signal(signal.SIGKILL)
        output = worker.communicate(timeout=120)[0]
    finally:
        worker.kill()
    assert worker.returncode != 0, output
    assert complete(tmp_path) < 3
    (parent,) = sweep_runs(experiment)
    backdate_heartbeats(tmp_path, HEARTBEAT, 3600)  # as if the worker died an hour ago

    again = run(tmp_path, *args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    trials = study(tmp_path).trials
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 3
    lost = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(t.state == TrialState.FAIL and t.system_attrs[ABANDONED] for t in lost)
    assert len(lost) <= 1
    # No trial's job ran twice; the lost trial's job may never have started.
    jobs = jobs_per_trial(tmp_path)
    assert max(jobs.values()) == 1 and set(jobs) <= {t.number for t in trials}
    assert all(jobs[t.number] == 1 for t in trials if t.state == TrialState.COMPLETE)
    (parent_after,) = sweep_runs(experiment)  # the re-run continued the same parent run
    assert parent_after.info.run_id == parent.info.run_id and parent_after.info.status == "FINISHED"
    assert parent_after.data.metrics["sweep/n_complete"] == 3


def test_two_workers_share_one_study_and_its_trial_budget(tmp_path) -> None:
    experiment = "tiny-two-workers"
    # Each job's first epoch waits until both workers have started a job: both must take part.
    args = ["hydra.sweeper.n_trials=4", "wait_for_workers=2", "epoch_seconds=0.2", f"logger.experiment_name={experiment}"]
    workers = [start(tmp_path, *args) for _ in range(2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    trials = study(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert jobs_per_trial(tmp_path) == {0: 1, 1: 1, 2: 1, 3: 1}
    by_worker = {pid for pid, _ in ledger(tmp_path)}
    assert len(by_worker) == 2
    # The sampler is seeded per trial number: the workers never drew the same point.
    assert len({(t.params["x"], t.params["y"]) for t in trials}) == 4
    # Both used one sweep folder: the job folders are named by trial, so none was overwritten.
    for t in trials:
        overrides = (tmp_path / "sweep" / f"trial-{t.number}" / ".hydra" / "overrides.yaml").read_text()
        assert f"++trial.number={t.number}\n" in overrides
    (parent,) = sweep_runs(experiment)
    assert parent.data.tags["study_name"] == "tiny"
    assert parent.data.metrics["best_value"] == max(t.value for t in trials)
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    figures = {a.path for a in client.list_artifacts(parent.info.run_id, "figures/sweep")}
    assert figures == {"figures/sweep/optimization_history.png", "figures/sweep/param_importances.png"}


def test_the_pruner_stops_trials_in_jobs_of_other_processes(tmp_path) -> None:
    # submitit_local: every job its own process, as on a cluster (the joblib launcher runs in
    # test_compare_sweeps and test_train_e2e).
    launcher, experiment = "submitit_local", "tiny-prune"
    result = run(
        tmp_path, "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", f"hydra/launcher={launcher}",
        "hydra.sweeper.pruner={_target_:pruners.OddTrialsAfterTwoEpochs}", f"logger.experiment_name={experiment}",
        "epochs=4",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trials = study(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED] * 2
    # Odd trials ran two of their four epochs; the study keeps the pruned trial's last value.
    assert [sorted(t.intermediate_values) for t in trials] == [[0, 1, 2, 3], [0, 1]] * 2
    assert trials[1].value == trials[1].intermediate_values[1]
    (parent,) = sweep_runs(experiment)
    assert parent.data.metrics["sweep/n_pruned"] == 2
    assert parent.data.metrics["sweep/epochs_trained"] == 12


def test_failed_trials_count_the_sweep_goes_on_and_exits_non_zero(tmp_path) -> None:
    args = ["hydra.sweeper.n_trials=2", "y=1", "fail_on_y=1", "logger.experiment_name=tiny-fail"]
    result = run(tmp_path, *args)
    assert result.returncode != 0
    trials = study(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    assert trials[0].user_attrs[FAILURE] == "ValueError: y=1 fails on purpose"
    # Failed trials ran: the budget is spent, a re-run does not retry them forever.
    again = run(tmp_path, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(study(tmp_path).trials) == 2


def test_a_misspelt_search_key_fails_before_any_trial(tmp_path) -> None:
    result = run(tmp_path, "zz=interval(0, 1)", "logger.experiment_name=tiny-typo")
    assert result.returncode != 0
    assert "hydra.sweeper.params / overrides do not fit the config" in result.stderr and "zz" in result.stderr
    assert ledger(tmp_path) == []
    assert not (tmp_path / "optuna.journal").exists()
