"""Where runs go (tracking URI, experiment, artifact root) and what a run records when it starts."""

from __future__ import annotations

import os
import re
import subprocess
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lightning.pytorch.loggers import MLFlowLogger
from mlflow.entities import LifecycleStage
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heatlens.paths import PROJECT_ROOT
from heatlens.tracking.errors import TrackingError
from heatlens.tracking.run import RunHandle

DEFAULT_TRACKING_URI = f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"


def resolve_tracking_uri(configured: str | None = None) -> str:
    """`logger.tracking_uri` if set, else `MLFLOW_TRACKING_URI`, else the project's sqlite store."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    db_path = _sqlite_path(uri)
    if db_path is not None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    return uri


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
    """Id of experiment `name`, created with an explicit artifact location when missing."""
    client = MlflowClient(tracking_uri)
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return client.create_experiment(name, artifact_location=artifact_location_for(tracking_uri, name))
            except MlflowException:
                # Another job of the sweep created it first.
                experiment = client.get_experiment_by_name(name)
    except MlflowException as err:
        raise TrackingError(f"logger.tracking_uri={tracking_uri}: MLflow cannot use it: {err.message}") from None
    if experiment is None or experiment.lifecycle_stage == LifecycleStage.DELETED:
        raise TrackingError(
            f"logger.experiment_name={name!r} is deleted in {tracking_uri}: restore it "
            f"(`mlflow experiments restore`) or choose another name"
        )
    return experiment.experiment_id


def create_logger(
    logger_cfg: Mapping[str, Any], run_name: str, tags: Mapping[str, str], run_id: str | None = None
) -> MLFlowLogger:
    """Lightning's MLFlowLogger on the resolved store; `run_id` continues an existing run."""
    tracking_uri = resolve_tracking_uri(logger_cfg.get("tracking_uri"))
    experiment_name = logger_cfg.get("experiment_name", "heatlens")
    ensure_experiment(tracking_uri, experiment_name)
    logger = MLFlowLogger(
        experiment_name=experiment_name,
        run_name=run_name,
        tracking_uri=tracking_uri,
        tags=dict(tags),
        log_model=False,
        artifact_location=artifact_location_for(tracking_uri, experiment_name),
        run_id=run_id,
    )
    try:
        _ = logger.run_id  # creates (or looks up) the run now, so failures are recorded from here on
    except MlflowException as err:
        raise TrackingError(f"MLflow run {run_id} cannot be continued in {tracking_uri}: {err.message}") from None
    return logger


def handle_for(logger: MLFlowLogger) -> RunHandle:
    return RunHandle(logger._tracking_uri, logger.run_id)


def run_reference(trainer: Any) -> dict[str, str] | None:
    """Where the trainer's MLflow run is (stored in checkpoints so a resume continues it)."""
    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger):
            return {"run_id": logger.run_id, "tracking_uri": logger._tracking_uri}
    return None


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


def git_commit(repo: Path = PROJECT_ROOT) -> str:
    """`git rev-parse HEAD` of the code's checkout, "unknown" outside a repository."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


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
    run.log_text(details, "reports/error.txt")
    run.set_status("FAILED")
