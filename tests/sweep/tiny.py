"""Run the tiny Hydra app (tests/sweep/tiny_app) as sweep workers, and read what they left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient

APP_DIR = Path(__file__).resolve().parent / "tiny_app"


def command(tmp_path: Path, *overrides: str) -> list[str]:
    return [
        sys.executable, str(APP_DIR / "app.py"), "-m",
        f"ledger={tmp_path / 'ledger.txt'}",
        f"hydra.sweeper.storage={tmp_path / 'optuna.journal'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *overrides,
    ]


def environment() -> dict[str, str]:
    # The app's folder holds the test pruner; the tracking URI comes from tests/conftest.py.
    return {**os.environ, "PYTHONPATH": str(APP_DIR), "OMP_NUM_THREADS": "1"}


def start(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    (tmp_path / "ledger.txt").touch()
    return subprocess.Popen(command(tmp_path, *overrides), env=environment(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(tmp_path: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess:
    (tmp_path / "ledger.txt").touch()
    return subprocess.run(command(tmp_path, *overrides), env=environment(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)


def journal(tmp_path: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal")))


def study(tmp_path: Path, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=journal(tmp_path))


def backdate_heartbeats(tmp_path: Path, heartbeat: str, seconds: float, name: str = "tiny") -> None:
    """Move the last heartbeat of every running trial `seconds` back: a dead worker, without waiting."""
    storage = journal(tmp_path)
    study_id = storage.get_study_id_from_name(name)
    for trial in storage.get_all_trials(study_id, states=(optuna.trial.TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_system_attr(trial_id, heartbeat, time.time() - seconds)


def wait_until(condition, timeout: float = 240, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        time.sleep(0.1)


def ledger(tmp_path: Path) -> list[tuple[int, int]]:
    """(worker pid, trial number) of every job that started."""
    lines = (tmp_path / "ledger.txt").read_text().split("\n")
    return [(int(pid), int(number)) for pid, number in (line.split() for line in lines if line)]


def jobs_per_trial(tmp_path: Path) -> Counter:
    return Counter(number for _, number in ledger(tmp_path))


def sweep_runs(experiment: str) -> list:
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    return client.search_runs([found.experiment_id], filter_string="tags.`heatlens.kind` = 'sweep'")
