"""The outbox: what a run logs while its tracking server is unreachable, kept on disk in order and
delivered once the server answers (by the job itself, or later by `heatlens-sync <run folder>`).

Layout, inside the job's output folder: `mlflow-outbox/run.json` (tracking URI and run id),
`ops/<n>.json` one record per logging call (written atomically, numbered in call order) and
`files/<n>/` the artifact of record n. A record is deleted once the server has taken it. MLflow's
metric log is not idempotent, so a record that may have reached the server already (its request
failed half-way, or a delivery was interrupted) is marked `maybe_delivered` first; delivering it
again skips the metric values the server already holds (same key, step, timestamp and value).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import requests
from filelock import FileLock
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from heatlens.data.atomic import link_or_copy, write_text_atomic, write_with
from heatlens.tracking.errors import TrackingError

log = logging.getLogger(__name__)

OUTBOX_DIR = "mlflow-outbox"
PROBE_TIMEOUT_S = 3.0
# Logging calls that may wait in the outbox and run later: name -> (module, function, the run tag
# that says it already ran). Only these are ever imported from a record.
DEFERRABLE = {"log_selected_model": ("heatlens.tracking.model", "log_selected_model", "model_uri")}


def unreachable(error: BaseException) -> bool:
    """True when `error` (or an exception it was raised from) says the server could not be reached
    or did not answer: a refused or dropped connection, a timeout, retries exhausted on 5xx answers."""
    return why(error) is not None


def why(error: BaseException) -> str | None:
    """Why the server was unreachable, in a few words; None when `error` is not about reaching it."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (requests.exceptions.Timeout, TimeoutError)):
            return "no answer in time"
        if isinstance(seen, requests.exceptions.RetryError):
            return "it kept answering with server errors"
        if isinstance(seen, (requests.exceptions.ConnectionError, ConnectionError)):
            return "connection refused" if "refused" in str(seen).lower() else "connection failed"
        seen = seen.__cause__ or seen.__context__
    return None


def answers(tracking_uri: str) -> bool:
    """One quick request (no retries): does the server answer at all? Any HTTP answer below 500 counts."""
    try:
        return requests.get(f"{tracking_uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S).status_code < 500
    except requests.exceptions.RequestException:
        return False


@dataclass
class Delivered:
    records: int = 0
    metrics: int = 0
    files: int = 0
    skipped_metrics: int = 0  # already on the server (a record that may have been delivered before)

    def __str__(self) -> str:
        text = f"{_count(self.records, 'record')} ({_count(self.metrics, 'metric value')}, {_count(self.files, 'file')})"
        return text + (f", {self.skipped_metrics} metric values already there" if self.skipped_metrics else "")


class Outbox:
    """The records of run `run_id` waiting in `folder` (see the module docstring)."""

    def __init__(self, folder: str | Path, tracking_uri: str, run_id: str) -> None:
        self.folder = Path(folder)
        self.tracking_uri = tracking_uri
        self.run_id = run_id

    @classmethod
    def open(cls, folder: str | Path) -> Outbox:
        """The outbox in `folder` (a run folder or the outbox itself); TrackingError when there is none."""
        folder = Path(folder)
        if not (folder / "run.json").is_file():
            folder = folder / OUTBOX_DIR
        try:
            saved = json.loads((folder / "run.json").read_text())
            return cls(folder, saved["tracking_uri"], saved["run_id"])
        except FileNotFoundError:
            raise TrackingError(f"{folder}: no MLflow outbox here (nothing waits to be delivered)") from None
        except (ValueError, KeyError, TypeError):
            raise TrackingError(f"{folder / 'run.json'}: not an outbox description (tracking_uri, run_id)") from None

    def owner(self) -> tuple[str, str] | None:
        """(tracking URI, run id) the records are for, None before the first record."""
        try:
            saved = json.loads((self.folder / "run.json").read_text())
        except (OSError, ValueError):
            return None
        return saved.get("tracking_uri"), saved.get("run_id")

    def pending(self) -> list[Path]:
        """The waiting records, oldest first (not the hidden leftovers of an interrupted atomic write)."""
        return sorted(p for p in (self.folder / "ops").glob("*.json") if not p.name.startswith("."))

    def add(self, op: dict[str, Any], file: str | Path | None = None, maybe_delivered: bool = False) -> Path | None:
        """Append one record (and a copy of its artifact file); returns where the copy is kept."""
        if self.owner() != (self.tracking_uri, self.run_id):
            write_text_atomic(self.folder / "run.json", json.dumps(
                {"tracking_uri": self.tracking_uri, "run_id": self.run_id}), "outbox description")
        waiting = self.pending()
        name = f"{int(waiting[-1].stem) + 1 if waiting else 1:08d}"
        kept = None
        if file is not None:
            kept = self.folder / "files" / name / Path(file).name
            shutil.rmtree(kept.parent, ignore_errors=True)  # a leftover of an interrupted record
            write_with(kept, lambda tmp: link_or_copy(Path(file), tmp), "outbox copy of")
            op = {**op, "file": kept.relative_to(self.folder).as_posix()}
        write_text_atomic(self.folder / "ops" / f"{name}.json", json.dumps({**op, "maybe_delivered": maybe_delivered}),
                          "outbox record")
        return kept

    def summary(self) -> Delivered:
        """What waits (as Delivered counts)."""
        waiting = Delivered()
        for record in self._records():
            waiting.records += 1
            waiting.metrics += len(record.get("metrics", ()))
            waiting.files += "file" in record
        return waiting

    def deliver(self, client: MlflowClient) -> Delivered:
        """Send every waiting record in order through `client` (a plain MlflowClient) and delete each once
        sent. A record the server refuses (not an outage: MLflow rejects it) stops delivery with a
        TrackingError naming it; an outage stops it with MLflow's exception, the rest still waiting."""
        done = Delivered()
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / ".lock")):
            for path in self.pending():
                record = json.loads(path.read_text())
                if not record["maybe_delivered"]:
                    # The request may reach the server even if its answer does not come back.
                    write_text_atomic(path, json.dumps({**record, "maybe_delivered": True}), "outbox record")
                try:
                    self._send(client, record, done)
                except Exception as error:
                    if unreachable(error):
                        raise
                    raise TrackingError(f"{path}: the tracking server refused this record: "
                                        f"{' '.join(str(error).split())[:300]}") from None
                path.unlink()
                shutil.rmtree(self.folder / "files" / path.stem, ignore_errors=True)
                done.records += 1
        return done

    def _records(self) -> Iterator[dict[str, Any]]:
        for path in self.pending():
            yield json.loads(path.read_text())

    def _send(self, client: MlflowClient, record: Mapping[str, Any], done: Delivered) -> None:
        kind = record["kind"]
        if kind == "batch":
            metrics = [Metric(key, value, timestamp, step) for key, value, timestamp, step in record["metrics"]]
            if record["maybe_delivered"]:
                kept = _not_on_server(client, self.run_id, metrics)
                done.skipped_metrics += len(metrics) - len(kept)
                metrics = kept
            params = [Param(key, value) for key, value in record["params"]]
            tags = [RunTag(key, value) for key, value in record["tags"]]
            if metrics or params or tags:
                client.log_batch(self.run_id, metrics=metrics, params=params, tags=tags)
            done.metrics += len(metrics)
        elif kind == "artifact":
            client.log_artifact(self.run_id, str(self.folder / record["file"]), record["artifact_path"])
            done.files += 1
        elif kind == "status":
            if record["status"] == "RUNNING":
                client.update_run(self.run_id, status="RUNNING")
            else:
                client.set_terminated(self.run_id, record["status"], end_time=record["end_time"])
        elif kind == "call":
            module, function, done_tag = DEFERRABLE[record["function"]]
            if record["maybe_delivered"] and done_tag in client.get_run(self.run_id).data.tags:
                return
            from heatlens.tracking.run import RunHandle

            handle = RunHandle(self.tracking_uri, self.run_id, client=client)
            getattr(import_module(module), function)(handle, str(self.folder / record["file"]), **record["kwargs"])
            done.files += 1
        else:
            raise TrackingError(f"unknown outbox record kind {kind!r}")


def sync(folder: str | Path) -> str:
    """Deliver the outbox of run folder `folder` (what `heatlens-sync` does); returns the line to print.
    TrackingError when the server does not answer (the records stay)."""
    outbox = Outbox.open(folder)
    if not outbox.pending():
        return f"{outbox.folder}: nothing waits to be delivered to MLflow run {outbox.run_id}"
    if not answers(outbox.tracking_uri):
        raise TrackingError(f"the tracking server {outbox.tracking_uri} does not answer: {outbox.summary()} still "
                            f"wait in {outbox.folder}; run heatlens-sync again once it is up")
    client = MlflowClient(outbox.tracking_uri)
    try:
        delivered = outbox.deliver(client)
    except Exception as error:
        if not unreachable(error):
            raise
        raise TrackingError(f"the tracking server {outbox.tracking_uri} stopped answering ({why(error)}): "
                            f"{outbox.summary()} still wait in {outbox.folder}; run heatlens-sync again") from None
    status = client.get_run(outbox.run_id).info.status
    return f"delivered {delivered} to MLflow run {outbox.run_id} in {outbox.tracking_uri}; its status: {status}"


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def _not_on_server(client: MlflowClient, run_id: str, metrics: list[Metric]) -> list[Metric]:
    """The metric values the server does not hold yet (same key, step, timestamp and value)."""
    held: dict[str, set[tuple[int, int, float | str]]] = {}
    for key in {m.key for m in metrics}:
        held[key] = {(m.step, m.timestamp, _comparable(m.value)) for m in client.get_metric_history(run_id, key)}
    return [m for m in metrics if (m.step, m.timestamp, _comparable(m.value)) not in held[m.key]]


def _comparable(value: float) -> float | str:
    return "nan" if math.isnan(value) else float(value)
