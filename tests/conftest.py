"""Session-wide isolation (no test writes to the repository's mlruns/ or caches), and a fresh MLflow
experiment or run per test in that session store. This folder is on sys.path: shared test modules
(toy_data, ...) live here."""

from __future__ import annotations

import itertools
import os

import pytest
from mlflow.tracking import MlflowClient

from heatlens.tracking import RunHandle
from heatlens.tracking.setup import ensure_experiment

_numbers = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow end-to-end modules first: under `-n auto --dist loadscope` the many short tests then fill
    the workers' gaps at the end, instead of one long module running alone while the other waits."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def isolated_stores(tmp_path_factory: pytest.TempPathFactory):
    """MLFLOW_TRACKING_URI -> a tmp sqlite store, HEATLENS_CACHE -> a tmp folder (shared by the session)."""
    root = tmp_path_factory.mktemp("stores")
    saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "HEATLENS_CACHE")}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["HEATLENS_CACHE"] = str(root / "cache")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def experiment() -> tuple[MlflowClient, str, str]:
    """(client, experiment id, experiment name): a new experiment in the session store."""
    uri = os.environ["MLFLOW_TRACKING_URI"]
    name = f"test-experiment-{next(_numbers)}"
    return MlflowClient(uri), ensure_experiment(uri, name), name


@pytest.fixture
def run(experiment) -> RunHandle:
    """A new RUNNING run in its own experiment."""
    client, experiment_id, _ = experiment
    return RunHandle(os.environ["MLFLOW_TRACKING_URI"], client.create_run(experiment_id).info.run_id)
