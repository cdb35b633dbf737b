"""Training tests: a fresh MLflow experiment per test in the session's tmp store."""

from __future__ import annotations

import itertools
import os

import pytest
from mlflow.tracking import MlflowClient

from heatlens.tracking import RunHandle
from heatlens.tracking.setup import ensure_experiment

_numbers = itertools.count()


@pytest.fixture
def experiment() -> tuple[MlflowClient, str, str]:
    """(client, experiment id, experiment name) in the session store (MLFLOW_TRACKING_URI)."""
    uri = os.environ["MLFLOW_TRACKING_URI"]
    name = f"train-test-{next(_numbers)}"
    return MlflowClient(uri), ensure_experiment(uri, name), name


@pytest.fixture
def run(experiment) -> RunHandle:
    client, experiment_id, _ = experiment
    return RunHandle(os.environ["MLFLOW_TRACKING_URI"], client.create_run(experiment_id).info.run_id)
