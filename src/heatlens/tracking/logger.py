"""The run's Lightning logger: creating or continuing an MLflow run for a training job, and finding it
again from a trainer. The only tracking module that imports Lightning (a sweep's controller and the
tracking setup stay free of it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from typing_extensions import override

from heatlens.tracking.errors import TrackingError
from heatlens.tracking.names import run_name_for, settle_unique_name
from heatlens.tracking.resilient import resilient_client
from heatlens.tracking.setup import artifact_location_for, ensure_experiment, resolve_tracking_uri


class HeatlensMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger, except that it never ends the run.

    Lightning calls `finalize("success")` when `fit` ends and `finalize("failed")` on any error,
    before test metrics, reports and explanations exist: a job killed after fit would look
    finished. The entry point sets FINISHED, KILLED or FAILED itself once the run is complete.
    """

    def __init__(self, *args: Any, client: MlflowClient | None = None, figures: bool = True, **kwargs: Any) -> None:
        """`client`: the run's client (a ResilientClient on a tracking server) instead of a plain one;
        `figures`: `logger.figures` (the run's RunHandles render figures)."""
        super().__init__(*args, **kwargs)
        self.figures = figures
        if client is not None:
            self._mlflow_client = client

    @override
    def finalize(self, status: str = "success") -> None:
        """Nothing to flush (checkpoints are uploaded by heatlens.tracking, not by this logger)."""


def create_logger(
    logger_cfg: Mapping[str, Any],
    base_name: str,
    tags: Mapping[str, str],
    run_id: str | None = None,
    job_number: int | None = None,
    run_folder: str | Path | None = None,
) -> HeatlensMLFlowLogger:
    """The logger of a new run named `run_name_for(..., base_name, job_number, tags["sweep_id"])`, or
    of run `run_id` (a resume). `logger.parent_run_id` makes the new run that run's child. Only
    rank 0 touches MLflow; other ranks get a logger that logs nothing. On a tracking server, what
    the run logs while the server is unreachable waits in `<run_folder>/mlflow-outbox` (default: the
    Hydra job's output folder; heatlens.tracking.resilient)."""
    tracking_uri = resolve_tracking_uri(logger_cfg.get("tracking_uri"))
    experiment_name = logger_cfg.get("experiment_name", "heatlens")
    run_client = None
    if rank_zero_only.rank == 0:
        experiment_id = ensure_experiment(tracking_uri, experiment_name)
        client = MlflowClient(tracking_uri)
        if run_id is None:
            run_id = _start_run(client, experiment_id, experiment_name, base_name, tags, logger_cfg, job_number)
        else:
            _check_run(client, run_id, tracking_uri)
        run_client = resilient_client(tracking_uri, run_id, run_folder or _hydra_output_dir())
    return HeatlensMLFlowLogger(
        experiment_name=experiment_name,
        tracking_uri=tracking_uri,
        log_model=False,
        artifact_location=artifact_location_for(tracking_uri, experiment_name),
        run_id=run_id,
        client=run_client,
        figures=logger_cfg.get("figures", True),
    )


def _hydra_output_dir() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None


def _start_run(
    client: MlflowClient, experiment_id: str, experiment_name: str, base_name: str,
    tags: Mapping[str, str], logger_cfg: Mapping[str, Any], job_number: int | None,
) -> str:
    run_tags = dict(tags)
    parent = logger_cfg.get("parent_run_id")
    if parent:
        _check_parent(client, parent, experiment_id, experiment_name)
        run_tags[MLFLOW_PARENT_RUN_ID] = parent
    name = run_name_for(client.tracking_uri, experiment_name, base_name, job_number, tags.get("sweep_id"))
    try:
        # resolve_tags adds MLflow's own context tags (user, source), as Lightning's logger does.
        run = client.create_run(experiment_id, run_name=name, tags=resolve_tags(run_tags))
    except MlflowException as err:
        raise TrackingError(f"logger.tracking_uri={client.tracking_uri}: cannot create a run: {err.message}") from None
    settle_unique_name(client, run)
    return run.info.run_id


def _check_parent(client: MlflowClient, parent: str, experiment_id: str, experiment_name: str) -> None:
    try:
        info = client.get_run(parent).info
    except MlflowException:
        raise TrackingError(f"logger.parent_run_id={parent}: no such run in {client.tracking_uri}") from None
    if info.experiment_id != experiment_id:
        raise TrackingError(
            f"logger.parent_run_id={parent}: a run of experiment id {info.experiment_id}, not of "
            f"logger.experiment_name={experiment_name!r} (id {experiment_id}): the UI nests children "
            f"only inside their parent's experiment"
        )


def _check_run(client: MlflowClient, run_id: str, tracking_uri: str) -> None:
    try:
        client.get_run(run_id)
    except MlflowException as err:
        raise TrackingError(f"MLflow run {run_id} cannot be continued in {tracking_uri}: {err.message}") from None


def run_reference(trainer: Any) -> dict[str, str] | None:
    """Where the trainer's MLflow run is (stored in checkpoints so a resume continues it)."""
    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger):
            return {"run_id": logger.run_id, "tracking_uri": logger._tracking_uri}
    return None
