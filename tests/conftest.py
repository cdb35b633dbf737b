"""Session-wide isolation: no test writes to the repository's mlruns/ or .cache/."""

from __future__ import annotations

import os

import pytest


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
