"""The MlflowClient of a run on a tracking server: when the server is unreachable, training goes on.

`ResilientClient` is the one client both logging paths use (Lightning's MLflow logger and every
RunHandle of the run, through `client_for`). A write the server cannot take, and every write after it,
goes to the run's outbox (heatlens.tracking.outbox) in call order; at each later logging call (at most
every `PROBE_INTERVAL_S` seconds) one quick request asks whether the server answers again and, if so,
the outbox is delivered before the new call. Reads of the run while the server is away (its metrics,
history, artifacts: the reports and summary figure read them back) are answered from what this process
logged. A local store (file, sqlite) never goes away: it gets a plain MlflowClient, at no cost.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from mlflow.entities import FileInfo, Metric, Param, Run, RunData, RunTag
from mlflow.tracking import MlflowClient

from heatlens.tracking.errors import TrackingError
from heatlens.tracking.outbox import OUTBOX_DIR, Outbox, answers, unreachable, why

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 10.0
TERMINAL = ("FINISHED", "FAILED", "KILLED")
_clients: dict[tuple[str, str], ResilientClient] = {}


def client_for(tracking_uri: str, run_id: str | None = None) -> MlflowClient:
    """The run's ResilientClient when this process has one, else a plain MlflowClient."""
    return _clients.get((tracking_uri, run_id or "")) or MlflowClient(tracking_uri)


def resilient_client(tracking_uri: str, run_id: str, run_folder: str | Path | None) -> MlflowClient:
    """A ResilientClient with its outbox in `run_folder` for a tracking server; a plain MlflowClient for a
    local store or without a run folder."""
    if run_folder is None or urlparse(tracking_uri).scheme not in ("http", "https"):
        return MlflowClient(tracking_uri)
    client = ResilientClient(tracking_uri, run_id, Path(run_folder) / OUTBOX_DIR)
    _clients[(tracking_uri, run_id)] = client
    return client


class ResilientClient(MlflowClient):
    """MlflowClient whose writes to run `run_id` wait in an outbox while the server is unreachable."""

    def __init__(self, tracking_uri: str, run_id: str, outbox_dir: Path) -> None:
        super().__init__(tracking_uri)
        self.run_id = run_id
        self.outbox = Outbox(outbox_dir, tracking_uri, run_id)
        self._plain = MlflowClient(tracking_uri)
        waiting = self.outbox.pending()
        owner = self.outbox.owner()
        if waiting and owner != (tracking_uri, run_id):
            raise TrackingError(f"{outbox_dir} holds {len(waiting)} records of another MLflow run ({owner}) not yet "
                                f"delivered: run `heatlens-sync {outbox_dir.parent}` first, or use another run folder")
        self._queueing = bool(waiting)  # left by an earlier job of this run (a resume): those go first
        self._next_probe = 0.0
        self._warned = False
        # The server's view at the start; what this process logs is added to it for offline reads.
        self._run = self._plain.get_run(run_id)
        self._experiment = self._plain.get_experiment(self._run.info.experiment_id)
        self._metrics: dict[str, list[Metric]] = {}
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._artifacts: dict[str, Path | None] = {}

    @property
    def offline(self) -> bool:
        """True while records wait and the server has not answered since."""
        if self._queueing:
            self._try_delivery()
        return self._queueing

    # Writes -------------------------------------------------------------------------------------------------
    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = (), synchronous: bool | None = None) -> None:
        if run_id != self.run_id:
            return super().log_batch(run_id, metrics, params, tags, synchronous)
        for metric in metrics:
            self._metrics.setdefault(metric.key, []).append(metric)
        self._params |= {p.key: p.value for p in params}
        self._tags |= {t.key: t.value for t in tags}
        record = {"kind": "batch", "metrics": [[m.key, m.value, m.timestamp, m.step] for m in metrics],
                  "params": [[p.key, p.value] for p in params], "tags": [[t.key, t.value] for t in tags]}
        self._write(record, lambda: self._plain.log_batch(run_id, metrics, params, tags, synchronous))
        return None

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None,
                   step: int | None = None, **kwargs: Any) -> None:
        if run_id != self.run_id:
            return super().log_metric(run_id, key, value, timestamp, step, **kwargs)
        return self.log_batch(run_id, metrics=[Metric(key, value, timestamp or int(time.time() * 1000), step or 0)])

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        if run_id != self.run_id:
            return super().log_param(run_id, key, value, synchronous)
        self.log_batch(run_id, params=[Param(key, str(value))])
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        if run_id != self.run_id:
            return super().set_tag(run_id, key, value, synchronous)
        return self.log_batch(run_id, tags=[RunTag(key, str(value))])

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        if run_id != self.run_id or Path(local_path).is_dir():
            return super().log_artifact(run_id, local_path, artifact_path)
        target = str(PurePosixPath(artifact_path or ".") / Path(local_path).name)
        self._artifacts[target] = None
        kept = self._write({"kind": "artifact", "artifact_path": artifact_path},
                           lambda: self._plain.log_artifact(run_id, local_path, artifact_path), local_path)
        self._artifacts[target] = kept
        return None

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        if run_id != self.run_id:
            return super().log_artifacts(run_id, local_dir, artifact_path)
        for file in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            folder = PurePosixPath(artifact_path or ".") / file.parent.relative_to(local_dir).as_posix()
            self.log_artifact(run_id, str(file), None if str(folder) == "." else str(folder))
        return None

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        if run_id != self.run_id or name is not None or status is None:
            return super().update_run(run_id, status, name)
        self._write({"kind": "status", "status": status}, lambda: self._plain.update_run(run_id, status=status))
        return None

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        """End the run (status delivered in order with everything before it); a last delivery attempt,
        then one line saying what still waits and how to deliver it."""
        if run_id != self.run_id:
            return super().set_terminated(run_id, status, end_time)
        status, end_time = status or "FINISHED", end_time or int(time.time() * 1000)
        self._write({"kind": "status", "status": status, "end_time": end_time},
                    lambda: self._plain.set_terminated(run_id, status, end_time))
        if status in TERMINAL and self._queueing:
            self._try_delivery(force=True)
            if self._queueing:
                log.warning(
                    f"MLflow tracking server {self.tracking_uri} still unreachable at the end of the job: "
                    f"{self.outbox.summary()} wait in {self.outbox.folder}; deliver them with "
                    f"`heatlens-sync {self.outbox.folder.parent}` once it answers")
        return None

    def defer(self, function: str, file: str | Path, kwargs: dict[str, Any]) -> bool:
        """While the server is away, keep the call `function(run, file, **kwargs)` (outbox.DEFERRABLE) in
        the outbox and return True; else False (the caller runs it now)."""
        if not self.offline:
            return False
        self.outbox.add({"kind": "call", "function": function, "kwargs": kwargs}, file)
        return True

    # Reads of the run: from the server when it answers, else from what this process logged ------------------
    def get_run(self, run_id: str) -> Run:
        if run_id != self.run_id:
            return super().get_run(run_id)
        run = self._read(lambda: self._plain.get_run(run_id))
        if run is not None:
            self._run = run
            return run
        data = self._run.data
        latest = {key: max(values, key=lambda m: (m.step, m.timestamp)) for key, values in self._metrics.items()}
        metrics = [Metric(k, v, 0, 0) for k, v in data.metrics.items() if k not in latest] + list(latest.values())
        params = [Param(k, v) for k, v in (data.params | self._params).items()]
        tags = [RunTag(k, v) for k, v in (data.tags | self._tags).items()]
        return Run(self._run.info, RunData(metrics=metrics, params=params, tags=tags))

    def get_experiment(self, experiment_id: str) -> Any:
        if experiment_id != self._experiment.experiment_id:
            return super().get_experiment(experiment_id)
        return self._read(lambda: self._plain.get_experiment(experiment_id)) or self._experiment

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        if run_id != self.run_id:
            return super().get_metric_history(run_id, key)
        history = self._read(lambda: self._plain.get_metric_history(run_id, key))
        return list(self._metrics.get(key, [])) if history is None else history

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        if run_id != self.run_id:
            return super().list_artifacts(run_id, path)
        listed = self._read(lambda: self._plain.list_artifacts(run_id, path))
        if listed is not None:
            return listed
        prefix = PurePosixPath(path) if path else None
        children: dict[str, bool] = {}
        for artifact in map(PurePosixPath, self._artifacts):
            if prefix is None or prefix in artifact.parents:
                inner = artifact.relative_to(prefix) if prefix else artifact
                child = (prefix / inner.parts[0]) if prefix else PurePosixPath(inner.parts[0])
                children[str(child)] = children.get(str(child), False) or len(inner.parts) > 1
        return [FileInfo(name, is_dir, None) for name, is_dir in sorted(children.items())]

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        if run_id != self.run_id:
            return super().download_artifacts(run_id, path, dst_path)
        local = self._read(lambda: self._plain.download_artifacts(run_id, path, dst_path))
        if local is not None:
            return local
        kept = self._artifacts.get(str(PurePosixPath(path)))
        if kept is None or not kept.is_file() or dst_path is None:
            raise TrackingError(f"artifact {path} of run {run_id}: the tracking server {self.tracking_uri} is "
                                f"unreachable and no local copy is kept")
        target = Path(dst_path) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        return str(shutil.copyfile(kept, target))

    # The outbox ---------------------------------------------------------------------------------------------
    def _write(self, record: dict[str, Any], send: Callable[[], object], file: str | Path | None = None) -> Path | None:
        """`send` now, or keep `record` (with a copy of `file`) in the outbox; returns where the copy is kept."""
        if self._queueing:
            self._try_delivery()
        if not self._queueing:
            try:
                send()
                return None
            except Exception as error:
                if not unreachable(error):
                    raise
                self._went_away()
                kept = self.outbox.add(record, file, maybe_delivered=True)
                self._warn_once(error)
                return kept
        return self.outbox.add(record, file)

    def _read(self, read: Callable[[], Any]) -> Any:
        """`read()` from the server, or None while it is away."""
        if self.offline:
            return None
        try:
            return read()
        except Exception as error:
            if not unreachable(error):
                raise
            self._went_away()
            self._warn_once(error)
            return None

    def _went_away(self) -> None:
        self._queueing = True
        self._next_probe = time.monotonic() + PROBE_INTERVAL_S

    def _warn_once(self, error: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning(f"MLflow tracking server {self.tracking_uri} unreachable ({why(error)}): training goes "
                        f"on; what the run logs waits in {self.outbox.folder} ({self.outbox.summary()} so far) "
                        f"until it answers")

    def _try_delivery(self, force: bool = False) -> None:
        if not force and time.monotonic() < self._next_probe:
            return
        self._next_probe = time.monotonic() + PROBE_INTERVAL_S
        if not answers(self.tracking_uri):
            return
        try:
            delivered = self.outbox.deliver(self._plain)
        except Exception as error:
            if not unreachable(error):
                raise
            return
        self._queueing = False
        if self._warned:
            self._warned = False
            log.warning(f"MLflow tracking server {self.tracking_uri} answers again: delivered {delivered}")
