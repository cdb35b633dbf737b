"""Session-wide isolation (no test writes to the repository's mlruns/ or caches), and a fresh MLflow
experiment or run per test in that session store. This folder is on sys.path: shared test modules
(toy_data, in_process, trained_run, ...) live here.

Shared fixtures (see docs/guides/testing.md):
- `experiment`, `run`: a new MLflow experiment / RUNNING run in the session's tmp store.
- `trained_run` (session): a `trained_run.TrainedRun`, one finished `python train.py explain=full` run on
  510 phantom images of 32 px (simple_cnn, 8 epochs, 4 classes, test split of 51), trained once per
  session even across xdist workers. It holds the params, train/val/test metrics, reports/
  (test_predictions.npz, test_set.json, classification_report.json), the checkpoints (best-recall_macro
  uploaded, the others in `output_dir/checkpoints`), every `xai/` metric and figure and explain/*.npz
  (gradcam, aopc, heatmap_stats, embeddings, localisation, attributions, shortcut). Its own MLflow
  store, the session's phantom cache: `trained_run.client`, `.env` (for subprocesses and reexplain),
  `.output_dir`. Read it only: a test that adds runs to its store (reexplain children) finds its own by
  tag, never counts them all.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# MLflow, torch and heatlens are imported inside the fixtures: pytest's controlling process loads this
# file before it starts the xdist workers and runs no test, so importing them here only delayed the
# workers' start (3.8 s measured).
if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient
    from trained_run import TrainedRun

    from heatlens.tracking import RunHandle

_numbers = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    """Cache bytecode even where the environment says not to (CI images often set
    PYTHONDONTWRITEBYTECODE): the suite starts dozens of Python processes (xdist workers, DDP ranks,
    `train.py` smoke runs, servers), and without the cache each compiles Lightning, MLflow, pandas, ...
    from source again: measured 18.6 s of CPU to import them in a fresh venv against 7.4 s cached.
    Set here, before xdist starts its workers, so every child inherits it."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow end-to-end modules first: under `-n auto --dist loadscope` the many short tests then fill
    the workers' gaps at the end, instead of one long module running alone while the other waits."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trained_run import session_folder

    return session_folder(tmp_path_factory.getbasetemp(), os.environ.get("PYTEST_XDIST_WORKER"))


@pytest.fixture(scope="session", autouse=True)
def isolated_stores(tmp_path_factory: pytest.TempPathFactory):
    """MLFLOW_TRACKING_URI -> a tmp sqlite store of this worker, HEATLENS_CACHE -> one data cache for the
    whole session, xdist workers included: the same phantom set is generated once (the cache builds its
    folders under a lock and renames them into place, so concurrent builders are safe)."""
    from stores import TEMPLATE_ENV, build_template, sqlite_store

    root = tmp_path_factory.mktemp("stores")
    saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "HEATLENS_CACHE", TEMPLATE_ENV)}
    build_template(_session_folder(tmp_path_factory))
    os.environ["MLFLOW_TRACKING_URI"] = sqlite_store(root)
    os.environ["HEATLENS_CACHE"] = str(_session_folder(tmp_path_factory) / "cache")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def experiment() -> tuple[MlflowClient, str, str]:
    """(client, experiment id, experiment name): a new experiment in the session store."""
    from mlflow.tracking import MlflowClient

    from heatlens.tracking.setup import ensure_experiment

    uri = os.environ["MLFLOW_TRACKING_URI"]
    name = f"test-experiment-{next(_numbers)}"
    return MlflowClient(uri), ensure_experiment(uri, name), name


@pytest.fixture
def run(experiment) -> RunHandle:
    """A new RUNNING run in its own experiment."""
    from heatlens.tracking import RunHandle

    client, experiment_id, _ = experiment
    return RunHandle(os.environ["MLFLOW_TRACKING_URI"], client.create_run(experiment_id).info.run_id)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """The session's one trained run (module docstring): the first worker trains it, the others wait and reuse it."""
    from trained_run import train_once

    return train_once(_session_folder(tmp_path_factory) / "trained_run", Path(os.environ["HEATLENS_CACHE"]))
