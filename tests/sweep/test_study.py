"""Storage resolution, the shared trial budget, liveness of running trials, summary and figures,
on real Optuna studies (journal file and SQLite)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
import pytest
from optuna.trial import TrialState

from heatlens.sweep import Heartbeat, SharedStudy, StudyStorage, SweepConfigError, open_study, resolve_storage, summarize
from heatlens.sweep.figures import history_figure, importance_figure
from heatlens.sweep.pruners import build_pruner
from heatlens.sweep.storage import LOCK_GRACE_S
from heatlens.sweep.study import ABANDONED, HEARTBEAT, STALE_AFTER_HEARTBEATS

optuna.logging.set_verbosity(optuna.logging.WARNING)


def new_study(storage: StudyStorage, name: str = "s") -> SharedStudy:
    backend = storage.open()
    study, _ = open_study(backend, name, "maximize", optuna.samplers.RandomSampler(seed=0), None)
    return SharedStudy(study, backend)


def test_storage_defaults_to_a_journal_beside_the_given_folder_and_paths_become_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_storage(None, tmp_path / "mlruns").spec == str(tmp_path / "mlruns" / "optuna.journal")
    assert (tmp_path / "mlruns").is_dir()
    assert resolve_storage("studies/x.journal", Path("/unused")).spec == str(tmp_path / "studies" / "x.journal")
    sqlite = resolve_storage("sqlite:///db/optuna.db", Path("/unused"))
    assert sqlite.spec == f"sqlite:///{tmp_path / 'db' / 'optuna.db'}"
    assert sqlite.local_file == tmp_path / "db" / "optuna.db"
    assert StudyStorage("postgresql://host/db").local_file is None
    with pytest.raises(SweepConfigError, match="hydra.sweeper.storage=redis://"):
        resolve_storage("redis://localhost:6379", tmp_path)
    with pytest.raises(SweepConfigError, match="in-memory database keeps nothing"):
        resolve_storage("sqlite://", tmp_path)
    with pytest.raises(SweepConfigError, match="hydra.sweeper.storage=null: no folder"):
        resolve_storage(None, None)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_study_persists_in_either_storage_and_is_created_exactly_once(tmp_path, kind) -> None:
    spec = str(tmp_path / "optuna.journal") if kind == "journal" else f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = resolve_storage(spec, tmp_path)
    sampler = optuna.samplers.RandomSampler(seed=0)
    first, created = open_study(storage.open(), "s", "maximize", sampler, None)
    first.tell(first.ask(), 0.5)
    again, created_again = open_study(storage.open(), "s", "maximize", sampler, None)
    assert (created, created_again) == (True, False)
    assert [t.value for t in again.trials] == [0.5]
    with pytest.raises(SweepConfigError, match="hydra.sweeper.direction=minimize: study 's' was created to maximize"):
        open_study(storage.open(), "s", "minimize", sampler, None)


def test_the_budget_counts_every_trial_but_abandoned_ones(tmp_path) -> None:
    shared = new_study(resolve_storage(None, tmp_path))
    study = shared.study
    study.tell(study.ask(), 1.0)  # complete
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.tell(study.ask(), state=TrialState.FAIL)  # the job failed: it ran, it counts
    running = study.ask()
    abandoned = study.ask()
    shared.abandon(abandoned.number, "worker interrupted")
    shared.abandon(0, "already finished: ignored")
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.FAIL]
    assert study.trials[4].system_attrs[ABANDONED] == "worker interrupted"
    assert ABANDONED not in study.trials[0].system_attrs
    # 4 of the 5 trials count (complete, pruned, failed, running).
    assert shared.remaining(6) == 2
    assert shared.remaining(3) == 0
    assert running.number == 3


def test_a_running_trial_without_heartbeat_for_three_intervals_is_abandoned(tmp_path) -> None:
    shared = new_study(resolve_storage(None, tmp_path))
    quiet, alive = shared.study.ask(), shared.study.ask()
    now = time.time()
    interval = 10.0
    shared.storage.set_trial_system_attr(shared.trial_id(quiet.number), HEARTBEAT, now - STALE_AFTER_HEARTBEATS * interval - 1)
    shared.storage.set_trial_system_attr(shared.trial_id(alive.number), HEARTBEAT, now - STALE_AFTER_HEARTBEATS * interval + 1)
    assert shared.abandon_stale(interval, now=now) == [quiet.number]
    states = {t.number: t.state for t in shared.study.trials}
    assert states == {quiet.number: TrialState.FAIL, alive.number: TrialState.RUNNING}
    assert shared.remaining(2) == 1


class CountingClock:
    """A heartbeat clock that returns 1, 2, 3... and lets a test wait for the n-th beat: no sleeps."""

    def __init__(self) -> None:
        self.calls = 0
        self._changed = threading.Condition()

    def __call__(self) -> float:
        with self._changed:
            self.calls += 1
            self._changed.notify_all()
            return float(self.calls)

    def wait_for(self, calls: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.calls >= calls, timeout=60), f"beat {calls} never came"


def test_the_heartbeat_thread_marks_tracked_trials_until_untracked(tmp_path) -> None:
    shared = new_study(resolve_storage(None, tmp_path))
    trial, finished = shared.study.ask(), shared.study.ask()
    ids = [shared.trial_id(trial.number), shared.trial_id(finished.number)]
    clock = CountingClock()

    def beat_of(trial_id: int) -> float:
        return shared.storage.get_trial(trial_id).system_attrs[HEARTBEAT]

    with Heartbeat(shared.storage, interval_s=0.01, clock=clock) as heartbeat:
        heartbeat.track(ids)  # beats at once, then the thread every interval
        first = beat_of(ids[0])
        shared.study.tell(finished, 1.0)  # finished meanwhile: the thread drops it instead of failing
        told_at = clock.calls
        clock.wait_for(first + 3)  # beat first + 2 is written: beats are sequential in the thread
        later = beat_of(ids[0])
        heartbeat.untrack(ids[:1])
        untracked_at = clock.calls
        clock.wait_for(untracked_at + 2)  # the beat after `untrack` is done
        stopped = beat_of(ids[0])
        clock.wait_for(untracked_at + 5)
        assert beat_of(ids[0]) == stopped  # three more beats wrote nothing on it
    assert first < later <= stopped <= untracked_at
    assert beat_of(ids[1]) <= told_at  # no beat stamped after it finished
    with pytest.raises(SweepConfigError, match="heartbeat_interval=0"):
        Heartbeat(shared.storage, 0)


def test_the_budget_lock_lets_one_worker_in_at_a_time(tmp_path) -> None:
    storage = resolve_storage(None, tmp_path)
    inside, overlaps = [], []

    def worker() -> None:
        for _ in range(20):
            with storage.exclusive():
                inside.append(1)
                overlaps.append(len(inside))
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == 60 and max(overlaps) == 1
    assert not Path(f"{storage.spec}.budget.lock").exists()


class LockClock:
    """The clock of Optuna's lock loop, injected: each of its sleeps moves the clock on instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        assert self.now < 10 * LOCK_GRACE_S, "the lock was never broken"  # a failure, not a hang


def test_a_budget_lock_left_by_a_killed_worker_is_broken_after_the_grace_period(tmp_path, monkeypatch) -> None:
    clock = LockClock()
    monkeypatch.setattr("optuna.storages.journal._file.time", clock)
    storage = resolve_storage(None, tmp_path)
    with storage.exclusive():
        pass
    assert clock.now == 0  # a free lock is taken at once
    # What a worker killed inside the lock leaves behind.
    Path(f"{storage.spec}.budget.lock").symlink_to(f"{storage.spec}.budget")
    with storage.exclusive():
        waited = clock.now
    assert LOCK_GRACE_S <= waited < LOCK_GRACE_S + 2  # the loop sleeps at most 1 s between two looks


def test_summary_and_figures_follow_the_completed_trials(tmp_path) -> None:
    shared = new_study(resolve_storage(None, tmp_path))
    study = shared.study
    assert history_figure(study) is None and importance_figure(study) is None
    values = {0.1: 0.3, 0.5: 0.9, 0.9: 0.4}
    for x, value in values.items():
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1), "k": optuna.distributions.CategoricalDistribution(["a", "b"])})
        study.tell(trial, value)
        if trial.number == 0:
            assert history_figure(study) is not None and importance_figure(study) is None
    pruned = study.ask()
    pruned.report(0.2, step=0)
    pruned.report(0.25, step=1)
    study.tell(pruned, state=TrialState.PRUNED)
    summary = summarize(study)
    assert (summary.n_complete, summary.n_pruned, summary.n_failed, summary.n_running) == (3, 1, 0, 0)
    assert summary.best_value == 0.9 and summary.best_number == 1
    assert summary.best_params == study.trials[1].params
    assert summary.epochs_trained == 2
    history, importance = history_figure(study), importance_figure(study, seed=0)
    assert history is not None and importance is not None
    # The importance bars name the searched parameters.
    labels = {t.get_text() for t in importance.axes[0].get_yticklabels()}
    assert labels == {"x", "k"}
    plt.close("all")


def test_the_pruner_setting_is_a_preset_a_config_or_null() -> None:
    median = build_pruner("median")
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert isinstance(build_pruner("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(build_pruner("halving"), optuna.pruners.SuccessiveHalvingPruner)
    threshold = build_pruner({"_target_": "optuna.pruners.ThresholdPruner", "lower": 0.5})
    assert isinstance(threshold, optuna.pruners.ThresholdPruner)
    assert build_pruner(None) is None
    with pytest.raises(SweepConfigError, match=re.escape("pruner=mediann: use median | hyperband | halving | null")):
        build_pruner("mediann")
    with pytest.raises(SweepConfigError, match="hydra.sweeper.pruner cannot be built"):
        build_pruner({"_target_": "optuna.pruners.MedianPruner", "typo": 1})
    with pytest.raises(SweepConfigError, match="RandomSampler is not an Optuna pruner"):
        build_pruner({"_target_": "optuna.samplers.RandomSampler"})
