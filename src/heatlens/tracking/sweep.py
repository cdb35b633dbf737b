"""MLflow side of an Optuna sweep: the parent run that summarises the study, where the study is kept
by default, and the end of a pruned trial's run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from matplotlib.figure import Figure
from mlflow.entities import LifecycleStage
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heatlens.tracking.errors import TrackingError
from heatlens.tracking.run import RunHandle
from heatlens.tracking.setup import _sqlite_path, ensure_experiment, resolve_tracking_uri

if TYPE_CHECKING:
    from heatlens.sweep import StudySummary  # Optuna: only a sweep imports it

KIND_TAG = "heatlens.kind"
SWEEP_KIND = "sweep"
PRUNED_TAG = "pruned"


def study_folder(logger_cfg: Mapping[str, Any]) -> Path:
    """The folder of the MLflow store the trials log into: a study kept there by default travels
    with the runs (copy, mount, share the folder)."""
    uri = resolve_tracking_uri(logger_cfg.get("tracking_uri"))
    db_path = _sqlite_path(uri)
    if db_path is not None:
        return db_path.parent
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else uri).resolve()
    raise TrackingError(
        f"hydra.sweeper.storage=null needs a local MLflow store, but logger.tracking_uri is {uri}: set "
        f"hydra.sweeper.storage to a journal file every worker sees, or to a database URL"
    )


def open_sweep_run(
    logger_cfg: Mapping[str, Any], study_name: str, storage: str, run_id: str | None = None
) -> RunHandle:
    """The sweep's parent run: `run_id` reopened when it is a live run of the same experiment
    (a continued study keeps its parent), else a new run tagged `heatlens.kind=sweep`."""
    tracking_uri = resolve_tracking_uri(logger_cfg.get("tracking_uri"))
    experiment_id = ensure_experiment(tracking_uri, logger_cfg.get("experiment_name", "heatlens"))
    client = MlflowClient(tracking_uri)
    if run_id:
        try:
            info = client.get_run(run_id).info
        except MlflowException:
            info = None
        if info is not None and info.experiment_id == experiment_id and info.lifecycle_stage == LifecycleStage.ACTIVE:
            run = RunHandle(tracking_uri, run_id)
            run.set_status("RUNNING")
            return run
    tags = {KIND_TAG: SWEEP_KIND, "study_name": study_name, "study_storage": storage}
    created = client.create_run(experiment_id, run_name=f"sweep-{study_name}", tags=tags)
    return RunHandle(tracking_uri, created.info.run_id)


def log_sweep_summary(run: RunHandle, summary: StudySummary, storage: str, figures: Mapping[str, Figure | None]) -> None:
    """Best trial (tags `best_params.<key>`, metric `best_value`), trial counts, `sweep/results.yaml`
    and the figures under `figures/sweep/`.

    Tags rather than params: a continued study may find a new best, and MLflow params never change.
    Metrics are logged at step = finished trials, so a continued study draws its progress.
    """
    finished = summary.n_complete + summary.n_pruned + summary.n_failed
    tags = {"study_name": summary.study_name, "study_storage": storage}
    if summary.best_number is not None:
        tags["best_trial"] = summary.best_number
        if summary.best_run_id:
            tags["best_run_id"] = summary.best_run_id
        tags |= {f"best_params.{key}": value for key, value in summary.best_params.items()}
    run.set_tags(tags)
    metrics = {
        "sweep/n_complete": summary.n_complete,
        "sweep/n_pruned": summary.n_pruned,
        "sweep/n_failed": summary.n_failed,
        "sweep/epochs_trained": summary.epochs_trained,
    }
    if summary.best_value is not None:
        metrics["best_value"] = summary.best_value
    run.log_metrics(metrics, step=finished)
    run.log_dict(summary.as_results(storage), "sweep/results.yaml")
    for name, figure in figures.items():
        if figure is not None:
            run.log_figure(figure, f"figures/sweep/{name}.png")


def record_pruned(run: RunHandle, error: BaseException) -> None:
    """A trial stopped by the pruner: tag `pruned`="true" with the reason, status KILLED (not FAILED,
    not FINISHED: comparisons of finished runs leave it out)."""
    run.set_tags({PRUNED_TAG: "true", "pruned_reason": str(error)})
    run.set_status("KILLED")
