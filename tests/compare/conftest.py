"""Compare tests share one tmp sqlite MLflow store (creating one costs seconds); each test gets its own experiment."""

from __future__ import annotations

import itertools

import pytest
from mlflow.tracking import MlflowClient
from stores import sqlite_store

_experiment_numbers = itertools.count()


@pytest.fixture(scope="session")
def mlflow_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    uri = sqlite_store(root)
    return MlflowClient(uri), uri, root


@pytest.fixture
def mlflow_store(mlflow_root, monkeypatch):
    """(client, experiment_id, experiment_name, tracking_uri); MLFLOW_TRACKING_URI points at the tmp store."""
    client, uri, root = mlflow_root
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    name = f"cmp{next(_experiment_numbers)}"
    experiment_id = client.create_experiment(name, artifact_location=(root / "artifacts" / name).as_uri())
    return client, experiment_id, name, uri
