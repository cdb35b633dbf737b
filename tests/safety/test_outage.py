"""Outages lose nothing: a real `mlflow server` on 127.0.0.1 is stopped during training for longer than
MLflow's own HTTP retries (shortened here to about a second) and started again on the same port and store.

Reference for "every epoch's metrics exactly once": what Lightning handed the MLflow logger during the
job, recorded before any of it reaches the client, the outbox or the server: each (step, value) of each
metric must be on the server once, and each per-epoch metric holds one value per epoch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import Metric
from lightning.pytorch.loggers import MLFlowLogger
from mlflow.tracking import MlflowClient

from heatlens.tracking.outbox import OUTBOX_DIR, Outbox

sys.path.insert(0, str(Path(__file__).parents[1] / "tracking"))
from tracking_server import NO_JOBS, free_port, server_command, wait_until_healthy  # noqa: E402

pytestmark = pytest.mark.slow

EPOCHS = 4
OVERRIDES = ["data.num_images=60", "data.image_size=32", "data.source_size=32", "data.batch_size=20",
             f"trainer.max_epochs={EPOCHS}", "explain=none", "callbacks=none", "trainer.num_sanity_val_steps=0"]
EPOCH_METRICS = ["train/loss", "val/loss", "val/acc", "val/recall_macro"]
# MLflow's own retries, made short: an outage longer than about a second outlasts them.
SHORT_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "OMP_NUM_THREADS": "1"}


class Server:
    """`mlflow server` (compose.yaml's command line) that the test stops and starts again on one port and store."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.process = root, free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", **NO_JOBS,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        log = self.root / "server.log"
        with open(log, "a") as sink:
            self.process = subprocess.Popen(server_command(self.root, self.port), stdout=sink, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)
        wait_until_healthy(self.process, f"{self.uri}/health", log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # as a crash or a pulled cable: no goodbye
            self.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    server = Server(tmp_path_factory.mktemp("server"))
    server.start()
    yield server
    server.stop()


def train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, experiment: str, hooks: dict):
    """Run the tiny job in-process against `uri`; `hooks`: {epoch: action} run at that training epoch's end.
    Returns (run folder, console output, what Lightning logged: key -> [(step, value)])."""
    from in_process import run_main

    import heatlens.cli.training as training
    from heatlens.cli.train import main
    from heatlens.tracking.logger import HeatlensMLFlowLogger

    class Outage(training.RunInCheckpoint):
        def on_train_epoch_end(self, trainer, module) -> None:
            super().on_train_epoch_end(trainer, module)
            hooks.get(trainer.current_epoch, lambda: None)()

    logged: dict[str, list[tuple[int, float]]] = {}

    def log_metrics(logger, metrics, step=None) -> None:
        for key, value in metrics.items():
            logged.setdefault(key, []).append((step, float(value)))
        MLFlowLogger.log_metrics(logger, metrics, step)

    monkeypatch.setattr(training, "RunInCheckpoint", Outage)
    monkeypatch.setattr(HeatlensMLFlowLogger, "log_metrics", log_metrics)
    monkeypatch.setattr("heatlens.tracking.resilient.PROBE_INTERVAL_S", 0.0)  # ask at every logging call
    folder = tmp_path / experiment
    result = run_main(main, *OVERRIDES, f"logger.tracking_uri={uri}", f"logger.experiment_name={experiment}",
                      f"hydra.run.dir={folder}", env=SHORT_RETRIES)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert all(len(logged[key]) == EPOCHS for key in EPOCH_METRICS), logged
    return folder, result.stdout + result.stderr, logged


def only_run(uri: str, experiment: str):
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return client, run


def on_server(client: MlflowClient, run_id: str, keys) -> dict[str, list[tuple[int, float]]]:
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in keys}


def test_a_server_down_for_two_epochs_loses_nothing_and_the_run_ends_finished(
        server, tmp_path, monkeypatch) -> None:
    folder, output, logged = train(tmp_path, monkeypatch, server.uri, "outage", hooks={0: server.stop, 2: server.start})
    client, run = only_run(server.uri, "outage")
    assert run.info.status == "FINISHED"
    assert on_server(client, run.info.run_id, logged) == {key: sorted(v) for key, v in logged.items()}
    assert "model_uri" in run.data.tags and "summary.png" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "unreachable" in output and "answers again: delivered" in output
    assert output.count(f"MLflow tracking server {server.uri} unreachable") == 1  # once per outage
    assert not Outbox(folder / OUTBOX_DIR, server.uri, run.info.run_id).pending()


def test_a_server_down_until_the_job_ends_is_synced_later_without_duplicates(
        server, tmp_path, monkeypatch, capsys) -> None:
    from heatlens.cli.sync import main as sync

    try:
        folder, output, logged = train(tmp_path, monkeypatch, server.uri, "synced", hooks={0: server.stop})
    finally:
        server.start()
    assert "still unreachable at the end of the job" in output and f"heatlens-sync {folder}" in output
    client, run = only_run(server.uri, "synced")
    assert run.info.status == "RUNNING"  # the job could not say how it ended: nothing claims it finished
    waiting = Outbox.open(folder).summary()
    assert waiting.records > 0 and waiting.metrics >= EPOCHS * len(EPOCH_METRICS)

    sync([str(folder)])
    assert "delivered" in capsys.readouterr().out
    _, run = only_run(server.uri, "synced")
    assert run.info.status == "FINISHED"
    expected = {key: sorted(v) for key, v in logged.items()}
    assert on_server(client, run.info.run_id, logged) == expected
    assert "model_uri" in run.data.tags and "summary.png" in {a.path for a in client.list_artifacts(run.info.run_id)}

    sync([str(folder)])  # again: nothing is sent twice
    assert "nothing waits" in capsys.readouterr().out
    assert on_server(client, run.info.run_id, logged) == expected


def test_a_record_that_may_have_reached_the_server_is_not_logged_twice(experiment, tmp_path) -> None:
    """A delivery cut between the server taking a batch and the record's deletion: the batch is sent again,
    its metric values already on the server are skipped, the others delivered."""
    client, experiment_id, _ = experiment
    run_id = client.create_run(experiment_id).info.run_id
    first, second = Metric("m", 1.0, 1000, 0), Metric("m", 2.0, 2000, 1)
    client.log_batch(run_id, metrics=[first])
    outbox = Outbox(tmp_path / OUTBOX_DIR, client.tracking_uri, run_id)
    outbox.add({"kind": "batch", "metrics": [[m.key, m.value, m.timestamp, m.step] for m in (first, second)],
                "params": [], "tags": []}, maybe_delivered=True)
    delivered = outbox.deliver(client)
    assert (delivered.metrics, delivered.skipped_metrics) == (1, 1)
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "m")] == [(0, 1.0), (1, 2.0)]
    assert json.loads((tmp_path / OUTBOX_DIR / "run.json").read_text())["run_id"] == run_id and not outbox.pending()


def test_heatlens_sync_without_an_outbox_or_a_server_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    from heatlens.cli.sync import main as sync

    monkeypatch.setattr(sys, "argv", ["heatlens-sync"])

    with pytest.raises(SystemExit) as ended:
        sync([str(tmp_path)])
    assert ended.value.code == 2
    assert capsys.readouterr().err == f"heatlens-sync: error: {tmp_path / OUTBOX_DIR}: no MLflow outbox here (nothing waits to be delivered)\n"

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    Outbox(tmp_path / OUTBOX_DIR, uri, "r1").add({"kind": "status", "status": "FINISHED", "end_time": 1})
    with pytest.raises(SystemExit):
        sync([str(tmp_path)])
    err = capsys.readouterr().err
    assert err.startswith(f"heatlens-sync: error: the tracking server {uri} does not answer: 1 record (0 metric values, "
                          f"0 files) still wait in") and err.count("\n") == 1
    assert len(Outbox.open(tmp_path).pending()) == 1  # kept for the next try


def test_a_local_store_gets_mlflows_plain_client_and_no_outbox(run, tmp_path) -> None:
    from heatlens.tracking import RunHandle
    from heatlens.tracking.resilient import resilient_client

    assert type(resilient_client(run.tracking_uri, run.run_id, tmp_path)) is MlflowClient
    handle = RunHandle(run.tracking_uri, run.run_id)
    assert type(handle.client) is MlflowClient and not handle.defer("log_selected_model", tmp_path / "x.ckpt")
    handle.log_metrics({"m": 1.0})
    assert not (tmp_path / OUTBOX_DIR).exists()
