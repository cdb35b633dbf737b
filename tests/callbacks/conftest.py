"""Fixtures of the callbacks tests."""

from __future__ import annotations

import os

import pytest
import torch
from stores import sqlite_store


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for subprocesses: a private MLflow store, the session's data cache (tests/conftest.py),
    one torch thread each (the 2 test cores are shared: oversubscribed threads make tiny convolutions ~30x
    slower)."""
    root = tmp_path_factory.mktemp("callbacks_store")
    env = {name: value for name, value in os.environ.items()
           if name not in ("MASTER_PORT", "MASTER_ADDR", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    env |= {"MLFLOW_TRACKING_URI": sqlite_store(root), "OMP_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore"}
    return env


@pytest.fixture
def one_thread() -> None:
    """One torch thread in this process: the 2 test cores are shared, and oversubscribed threads make
    tiny convolutions ~30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
