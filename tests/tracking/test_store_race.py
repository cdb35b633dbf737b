"""Processes that meet a missing sqlite store at the same moment (parallel sweep jobs, DDP ranks) all get it."""

from __future__ import annotations

import multiprocessing

from heatlens.tracking.setup import ensure_experiment, resolve_tracking_uri


def _first_contact(uri: str) -> None:
    ensure_experiment(resolve_tracking_uri(uri), "race")


def test_concurrent_first_contacts_with_a_fresh_sqlite_store_all_succeed(tmp_path) -> None:
    # Without the lock in resolve_tracking_uri, MLflow's table creation races ("duplicate column name").
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    context = multiprocessing.get_context("fork")  # starts with MLflow imported: the race is on the store
    workers = [context.Process(target=_first_contact, args=(uri,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
