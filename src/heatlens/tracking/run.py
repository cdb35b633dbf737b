"""RunHandle: the small logging door every post-fit step uses to write into one MLflow run."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH, MAX_TAG_VAL_LENGTH

from heatlens.tracking.errors import TrackingError
from heatlens.tracking.resilient import ResilientClient, client_for

FIGURE_DPI = 120


class RunHandle:
    """Logs metrics, figures, arrays, texts and files into the run `run_id` of `tracking_uri`.

    Its client is the run's ResilientClient when this process has one (a tracking server: writes wait
    in the outbox while it is unreachable), else `client`, else a plain MlflowClient. `figures=False`
    (`logger.figures=false`): figures are neither drawn (when given as functions) nor rendered, nothing
    else changes."""

    def __init__(self, tracking_uri: str, run_id: str, client: MlflowClient | None = None,
                 figures: bool = True) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.client = client or client_for(tracking_uri, run_id)
        self.figures = figures

    @classmethod
    def from_trainer(cls, trainer: Any) -> RunHandle:
        """The run of the trainer's MLFlowLogger (rank 0 only: other ranks have no run)."""
        from lightning.pytorch.loggers import MLFlowLogger  # here: a sweep's controller imports RunHandle

        for logger in trainer.loggers:
            if isinstance(logger, MLFlowLogger):
                return cls.for_logger(logger)
        raise TrackingError("the trainer has no MLFlowLogger: set logger=mlflow")

    @classmethod
    def for_logger(cls, logger: Any) -> RunHandle:
        """The run of an MLFlowLogger, with the logger's settings (`figures`; a plain MLFlowLogger renders them)."""
        return cls(logger._tracking_uri, logger.run_id, figures=getattr(logger, "figures", True))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        now = int(time.time() * 1000)
        entries = [Metric(key, float(value), now, step or 0) for key, value in metrics.items()]
        for start in range(0, len(entries), 1000):
            self.client.log_batch(self.run_id, metrics=entries[start : start + 1000])

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params, values cut to MLflow's length limit (the full config is an artifact)."""
        entries = [Param(key, _truncate(str(value), MAX_PARAM_VAL_LENGTH)) for key, value in params.items()]
        for start in range(0, len(entries), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self.run_id, params=entries[start : start + MAX_PARAMS_TAGS_PER_BATCH])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        entries = [RunTag(key, _truncate(str(value), MAX_TAG_VAL_LENGTH)) for key, value in tags.items()]
        self.client.log_batch(self.run_id, tags=entries)

    def log_figure(self, figure: Figure | Callable[[], Figure], artifact_file: str) -> None:
        """Save a matplotlib Figure as a PNG artifact, then close it. `figure` may be the function that draws
        it: a run that logs no figures never calls it (a drawn Figure is closed unrendered)."""
        if not self.figures:
            if isinstance(figure, Figure):
                plt.close(figure)
            return
        fig = figure if isinstance(figure, Figure) else figure()
        try:
            with self._staged(artifact_file) as path:
                fig.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")
        finally:
            plt.close(fig)

    def log_arrays(self, artifact_file: str, **arrays: np.ndarray) -> None:
        with self._staged(artifact_file) as path:
            np.savez_compressed(path, **arrays)

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, obj, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def defer(self, function: str, file: str | Path, **kwargs: Any) -> bool:
        """True when the tracking server is unreachable and the call `function(run, file, **kwargs)` (a
        name in heatlens.tracking.outbox.DEFERRABLE) was kept to run once it answers; False: run it now."""
        return isinstance(self.client, ResilientClient) and self.client.defer(function, file, kwargs)

    def metric_history(self, key: str) -> list[tuple[int, float]]:
        """(step, value) pairs of a metric, in step order."""
        history = self.client.get_metric_history(self.run_id, key)
        return sorted((m.step, m.value) for m in history)

    def set_status(self, status: str) -> None:
        """RUNNING (re-opens a run) or a terminal status: FINISHED, FAILED, KILLED."""
        if status == "RUNNING":
            self.client.update_run(self.run_id, status=status)
        else:
            self.client.set_terminated(self.run_id, status)

    @contextmanager
    def _staged(self, artifact_file: str) -> Iterator[Path]:
        """A temporary local file, uploaded to `artifact_file` when the block ends without error."""
        artifact = PurePosixPath(artifact_file)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / artifact.name
            yield path
            parent = str(artifact.parent)
            self.log_artifact(path, None if parent == "." else parent)


def _truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."
