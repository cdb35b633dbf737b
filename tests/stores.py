"""New sqlite MLflow stores for tests, each a copy of one empty store built once per session.

MLflow builds a new sqlite store by running all its Alembic migrations: about 2.5 s of CPU on the 2-core
test machine, for each of the suite's stores. Copying an empty migrated store gives the same database in
about 0.1 s. tests/tracking/test_store_race.py still builds its stores from nothing: it tests that build.
The template's Default experiment (id 0) points where a fresh store's would, at the working folder's
mlruns/; heatlens never logs there (each experiment keeps its artifacts beside the store)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from filelock import FileLock
from mlflow.tracking import MlflowClient

TEMPLATE_ENV = "HEATLENS_TEST_EMPTY_STORE"


def build_template(folder: Path) -> Path:
    """The session's empty store in `folder` (built by the first process that asks, under a lock);
    its path is also put in $HEATLENS_TEST_EMPTY_STORE for `sqlite_store`."""
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "empty-mlflow.db"
    with FileLock(str(folder / "empty-mlflow.lock")):
        if not template.is_file():
            building = folder / "building-mlflow.db"
            building.unlink(missing_ok=True)
            MlflowClient(f"sqlite:///{building}").search_experiments(max_results=1)
            os.replace(building, template)
    os.environ[TEMPLATE_ENV] = str(template)
    return template


def sqlite_store(folder: Path, name: str = "mlflow.db") -> str:
    """The URI of the sqlite store `folder/name`: a copy of the session's empty store unless it exists."""
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / name
    if not database.exists():
        shutil.copyfile(os.environ[TEMPLATE_ENV], database)
    return f"sqlite:///{database}"
