"""Where runs go (tracking URI, experiment, artifact root) and what a run records first (config, commit,
failure). The run's Lightning logger is heatlens.tracking.logger."""

from __future__ import annotations

import os
import re
import subprocess
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from filelock import FileLock
from mlflow.entities import LifecycleStage
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heatlens.paths import home_dir, source_checkout
from heatlens.report.runs import DEGENERATE_TAG
from heatlens.tracking.errors import TrackingError
from heatlens.tracking.run import RunHandle

# MLflow 3's experiment kind: "custom_model_development" says the experiment holds training runs. The
# 3.17 UI does not read it to choose the landing view (the browser's workflow type does: heatlens.tracking.ui).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
UPLOAD_POLICIES = ("all", "selected", "none")


def default_tracking_uri() -> str:
    """`sqlite:///<home>/mlruns/mlflow.db`, home = `$HEATLENS_HOME` or the working folder."""
    return f"sqlite:///{home_dir() / 'mlruns' / 'mlflow.db'}"


def resolve_tracking_uri(configured: str | None = None) -> str:
    """`logger.tracking_uri` if set, else `MLFLOW_TRACKING_URI`, else `default_tracking_uri()`.

    A sqlite store is created here under a file lock: MLflow builds a missing database's tables on first
    contact, and two processes doing that at once (parallel sweep jobs, DDP ranks of a fresh store) fail
    with "duplicate column name".
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    db_path = _sqlite_path(uri)
    if db_path is not None and uri not in _created_stores:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{db_path}.lock"):
            MlflowClient(uri).search_experiments(max_results=1)
        _created_stores.add(uri)
    return uri


_created_stores: set[str] = set()


def artifact_location_for(tracking_uri: str, experiment_name: str) -> str | None:
    """A sqlite store keeps artifacts beside the database, one folder per experiment; a server chooses."""
    db_path = _sqlite_path(tracking_uri)
    if db_path is None:
        return None
    return (db_path.parent / "artifacts" / re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment_name)).as_uri()


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(urlparse(uri).path)).resolve()


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """Id of experiment `name`, created when missing as a model-training experiment (MLflow 3 kind tag)."""
    client = MlflowClient(tracking_uri)
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return client.create_experiment(
                    name, artifact_location=artifact_location_for(tracking_uri, name),
                    tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND},
                )
            except MlflowException:
                # Another job of the sweep created it first.
                experiment = client.get_experiment_by_name(name)
        if experiment is not None and EXPERIMENT_KIND_TAG not in experiment.tags:
            # Created before heatlens set the kind: a heatlens experiment holds training runs.
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    except MlflowException as err:
        raise TrackingError(f"logger.tracking_uri={tracking_uri}: MLflow cannot use it: {err.message}") from None
    if experiment is None or experiment.lifecycle_stage == LifecycleStage.DELETED:
        raise TrackingError(
            f"logger.experiment_name={name!r} is deleted in {tracking_uri}: restore it "
            f"(`mlflow experiments restore`) or choose another name"
        )
    return experiment.experiment_id


def check_logger_config(logger_cfg: Mapping[str, Any]) -> None:
    """Raise TrackingError naming `logger.<key>=<value>` for a value that cannot work (nothing is contacted)."""
    for key in ("tracking_uri", "registered_model_name", "parent_run_id"):
        value = logger_cfg.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise TrackingError(f"logger.{key}={value!r}: expected a non-empty string or null")
    name = logger_cfg.get("experiment_name", "heatlens")
    if not isinstance(name, str) or not name.strip():
        raise TrackingError(f"logger.experiment_name={name!r}: expected a non-empty string")
    upload = logger_cfg.get("upload_checkpoints", "selected")
    if upload not in UPLOAD_POLICIES:
        raise TrackingError(f"logger.upload_checkpoints={upload!r}: expected one of {list(UPLOAD_POLICIES)}")
    figures = logger_cfg.get("figures", True)
    if not isinstance(figures, bool):
        raise TrackingError(f"logger.figures={figures!r}: expected true or false")


def run_location(run: RunHandle) -> str:
    """Where the run is and how to open it in the MLflow UI's machine-learning view (MLflow 3
    otherwise opens the GenAI view of the browser's last choice)."""
    found = run.client.get_run(run.run_id)
    info = found.info
    experiment = run.client.get_experiment(info.experiment_id)
    page = f"#/experiments/{info.experiment_id}/runs/{run.run_id}?workflowType=machine_learning"
    lines = [f"MLflow run {run.run_id} '{info.run_name}' (experiment {experiment.name!r}, id "
             f"{info.experiment_id}) in {run.tracking_uri}"]
    if urlparse(run.tracking_uri).scheme in ("http", "https"):
        lines.append(f"Open it:  {run.tracking_uri.rstrip('/')}/{page}")
    else:
        lines += [f"Open it:  heatlens-ui --backend-store-uri {run.tracking_uri}", f"then http://127.0.0.1:5000/{page}"]
    if found.data.tags.get(DEGENERATE_TAG):
        lines.append(f"Warning: the model {found.data.tags[DEGENERATE_TAG]} (tag {DEGENERATE_TAG})")
    return "\n".join(lines)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: keys read like Hydra overrides."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def git_commit() -> str:
    """HEAD of the source checkout heatlens runs from; outside one (a wheel, a Docker image without
    `.git`) the commit recorded at build time in `$HEATLENS_GIT_COMMIT`; else "unknown"."""
    checkout = source_checkout()
    if checkout is not None:
        try:
            out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                return out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return os.environ.get("HEATLENS_GIT_COMMIT") or "unknown"


def log_run_config(
    run: RunHandle, config: Mapping[str, Any], config_yaml: str, overrides_yaml: str, resumed: bool
) -> None:
    """Params (flattened config) and `config/config.yaml`, `config/overrides.yaml`.

    MLflow refuses to change a param, so a resumed run keeps its first params and stores the
    resumed job's config under `config/resumed/<n>/`.
    """
    params = flatten(config)
    folder = "config"
    if resumed:
        existing = run.client.get_run(run.run_id).data.params
        params = {k: v for k, v in params.items() if k not in existing}
        previous = run.client.list_artifacts(run.run_id, "config/resumed")
        folder = f"config/resumed/{len(previous) + 1}"
    run.log_params(params)
    run.log_text(config_yaml, f"{folder}/config.yaml")
    run.log_text(overrides_yaml, f"{folder}/overrides.yaml")


def record_failure(run: RunHandle, error: BaseException) -> None:
    """Mark the run FAILED with the error as tag `error` and `reports/error.txt` (with traceback)."""
    message = f"{type(error).__name__}: {error}"
    details = "".join(traceback.format_exception(error))
    run.set_tags({"error": message})
    try:
        run.log_text(details, "reports/error.txt")
    except OSError:  # the disk that failed the job may hold the artifacts too: the tag and status still count
        pass
    run.set_status("FAILED")
