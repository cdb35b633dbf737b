"""The study as many workers share it: a trial budget counted in the study, liveness of running trials,
and the summary a sweep reports.

Optuna's own heartbeat exists only for RDB storages; the journal file (our default) has none, so a
worker records `heatlens:heartbeat` on its running trials itself, and a running trial whose heartbeat
is older than the grace period belongs to a worker that died (killed job, lost node).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from heatlens.sweep.errors import SweepConfigError

HEARTBEAT = "heatlens:heartbeat"
# A trial whose worker stopped (interrupted or dead): it ran for nobody, so the budget ignores it.
ABANDONED = "heatlens:abandoned"
# User attributes: the error of a failed trial, the MLflow run a trial trained in.
FAILURE = "failure"
MLFLOW_RUN_ID = "mlflow_run_id"
STALE_AFTER_HEARTBEATS = 3


def open_study(
    storage: BaseStorage, study_name: str, direction: str, sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner | None,
) -> tuple[optuna.Study, bool]:
    """The study `study_name` (created when missing) and whether this call created it.

    Creation is atomic in every Optuna storage: of several workers starting together exactly one
    gets `created=True`.
    """
    if direction not in ("maximize", "minimize"):
        raise SweepConfigError(f"hydra.sweeper.direction={direction}: use maximize or minimize")
    pruner = pruner or optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(
            storage=storage, study_name=study_name, direction=direction, sampler=sampler, pruner=pruner
        )
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
    if study.directions != [StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE]:
        raise SweepConfigError(
            f"hydra.sweeper.direction={direction}: study {study_name!r} was created to "
            f"{study.direction.name.lower()}; use another hydra.sweeper.study_name"
        )
    return study, False


def counts_towards_budget(trial: FrozenTrial) -> bool:
    """Finished, running and waiting trials count; an abandoned one is to be run again."""
    return not (trial.state == TrialState.FAIL and trial.system_attrs.get(ABANDONED))


class SharedStudy:
    """A study with the storage it lives in, as one of possibly many workers sees it."""

    def __init__(self, study: optuna.Study, storage: BaseStorage) -> None:
        self.study = study
        self.storage = storage
        self.study_id = storage.get_study_id_from_name(study.study_name)

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def remaining(self, n_trials: int) -> int:
        """Trials still to run for the study to hold `n_trials` (counted over all workers)."""
        used = sum(counts_towards_budget(t) for t in self.study.get_trials(deepcopy=False))
        return max(0, n_trials - used)

    def abandon(self, number: int, reason: str) -> None:
        """Fail a trial nobody will finish, marked so that the budget runs it again."""
        trial_id = self.trial_id(number)
        if self.storage.get_trial(trial_id).state.is_finished():
            return
        self.storage.set_trial_system_attr(trial_id, ABANDONED, reason)
        self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)

    def abandon_stale(self, heartbeat_interval_s: float, now: float | None = None) -> list[int]:
        """Abandon running trials whose worker stopped sending heartbeats; their numbers."""
        now = time.time() if now is None else now
        stale = []
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT)
            if beat is None and trial.datetime_start is not None:
                beat = trial.datetime_start.timestamp()
            if beat is not None and now - beat > STALE_AFTER_HEARTBEATS * heartbeat_interval_s:
                self.abandon(trial.number, f"no heartbeat for {now - beat:.0f} s")
                stale.append(trial.number)
        return stale


class Heartbeat:
    """Records `heatlens:heartbeat` (Unix time) on the tracked trials every `interval_s` seconds."""

    def __init__(self, storage: BaseStorage, interval_s: float, clock: Callable[[], float] = time.time) -> None:
        if interval_s <= 0:
            raise SweepConfigError(f"hydra.sweeper.heartbeat_interval={interval_s}: must be positive")
        self.storage = storage
        self.interval_s = interval_s
        self.clock = clock  # injectable: tests count beats instead of sleeping
        self._trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heatlens-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def track(self, trial_ids: Iterable[int]) -> None:
        with self._lock:
            self._trial_ids.update(trial_ids)
        self._beat()

    def untrack(self, trial_ids: Iterable[int]) -> None:
        with self._lock:
            self._trial_ids.difference_update(trial_ids)

    def _beat(self) -> None:
        with self._lock:  # read with the ids: a beat stamped after `untrack` skips the untracked ids
            ids = sorted(self._trial_ids)
            now = self.clock()
        for trial_id in ids:
            try:
                self.storage.set_trial_system_attr(trial_id, HEARTBEAT, now)
            except optuna.exceptions.UpdateFinishedTrialError:  # finished meanwhile (abandoned elsewhere)
                self.untrack([trial_id])

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._beat()


@dataclass(frozen=True)
class StudySummary:
    study_name: str
    n_complete: int
    n_pruned: int
    n_failed: int
    n_running: int
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_run_id: str | None = None
    epochs_trained: int = 0

    def as_results(self, storage: str) -> dict[str, Any]:
        """The content of `optimization_results.yaml` (the keys of Hydra's Optuna plugin, and more)."""
        return {
            "name": "optuna",
            "study_name": self.study_name,
            "storage": storage,
            "best_trial": self.best_number,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "best_run_id": self.best_run_id,
            "n_complete": self.n_complete,
            "n_pruned": self.n_pruned,
            "n_failed": self.n_failed,
        }


def summarize(study: optuna.Study) -> StudySummary:
    trials = study.get_trials(deepcopy=False)
    by_state = {state: [t for t in trials if t.state == state] for state in TrialState}
    failed = [t for t in by_state[TrialState.FAIL] if not t.system_attrs.get(ABANDONED)]
    counts = dict(
        study_name=study.study_name,
        n_complete=len(by_state[TrialState.COMPLETE]),
        n_pruned=len(by_state[TrialState.PRUNED]),
        n_failed=len(failed),
        n_running=len(by_state[TrialState.RUNNING]),
        epochs_trained=epochs_trained(trials),
    )
    if not by_state[TrialState.COMPLETE]:
        return StudySummary(**counts)
    best = study.best_trial
    return StudySummary(
        **counts,
        best_number=best.number,
        best_value=best.value,
        best_params=dict(best.params),
        best_run_id=best.user_attrs.get(MLFLOW_RUN_ID),
    )


def epochs_trained(trials: Sequence[FrozenTrial]) -> int:
    """Validation epochs reported by the trials (one intermediate value per epoch)."""
    return sum(len(t.intermediate_values) for t in trials)
