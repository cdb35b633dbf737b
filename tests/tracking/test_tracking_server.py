"""A real MLflow tracking server (compose.yaml's command line, sqlite, artifacts proxied) and a 2-job
parallel sweep logging into it over HTTP from the launcher's worker processes; everything is read back
from another process (the test's own).

Reference for "nothing lost": the jobs' own files on disk (checkpoints byte for byte, the test
predictions behind test/acc) and the epoch count (one value per epoch for every per-epoch metric).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from in_process import restored, run_main
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient
from tracking_server import NO_JOBS, free_port, running, server_command

from heatlens.cli.train import main as train_main

pytestmark = pytest.mark.slow

EPOCHS = 2
TINY = ["data.num_images=80", "data.image_size=32", "data.source_size=48", "data.batch_size=16",
        f"trainer.max_epochs={EPOCHS}", "explain=none", "callbacks=none"]
EPOCH_METRICS = ["train/loss", "val/loss", "val/acc", "val/recall_macro", "val/recall/COVID", "val/recall/Normal"]
ONCE_METRICS = ["test/acc", "test/recall_macro", "test/f1/COVID", "model/params_total"]
EXPERIMENT = "server-sweep"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    with running(server_command(root, port), f"http://127.0.0.1:{port}/health", root / "server.log", NO_JOBS):
        yield f"http://127.0.0.1:{port}", root


def _files_of(client: MlflowClient, run_id: str, path: str | None = None) -> Iterator[tuple[str, int]]:
    for entry in client.list_artifacts(run_id, path):
        yield from _files_of(client, run_id, entry.path) if entry.is_dir else [(entry.path, entry.file_size)]


def _read_back(uri: str, name: str, folder: Path) -> dict:
    """Everything the server holds of experiment `name`, read as any client would (the current tracking
    URI is the server's: `mlflow-artifacts:` URIs resolve against it), artifacts downloaded into `folder`."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    report = {"artifact_location": experiment.artifact_location,
              "kind": experiment.tags.get("mlflow.experimentKind"), "runs": []}
    for run in client.search_runs([experiment.experiment_id]):
        run_id = run.info.run_id
        local = Path(download_artifacts(run_id=run_id, artifact_path="", dst_path=f"{folder}/{run_id}",
                                        tracking_uri=uri))
        listed = dict(_files_of(client, run_id))
        model = Path(download_artifacts(artifact_uri=f"runs:/{run_id}/model", dst_path=f"{folder}/{run_id}-model",
                                        tracking_uri=uri))
        report["runs"].append({
            "id": run_id, "name": run.info.run_name, "status": run.info.status,
            "artifact_uri": run.info.artifact_uri, "tags": run.data.tags,
            "metrics": {key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
                        for key in run.data.metrics},
            "listed": listed,
            "downloaded": {path: (local / path).stat().st_size for path in listed if (local / path).is_file()},
            "sha256": {path: hashlib.sha256((local / path).read_bytes()).hexdigest() for path in listed},
            "folder": str(local),
            "model_files": sorted(p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file()),
        })
    return report


@pytest.fixture(scope="module")
def sweep(server, tmp_path_factory: pytest.TempPathFactory) -> dict:
    uri, _ = server
    out = tmp_path_factory.mktemp("sweep")
    # The sweep's parent in this process (tests/in_process.py), its two jobs in the joblib launcher's
    # worker processes; MLFLOW_TRACKING_URI unset: the jobs learn of the server from logger.tracking_uri only.
    done = run_main(train_main, "-m", "hydra/launcher=parallel", *TINY, "seed=1,2", f"logger.tracking_uri={uri}",
                    f"logger.experiment_name={EXPERIMENT}", f"hydra.sweep.dir={out / 'sweep'}",
                    env={"MLFLOW_TRACKING_URI": None, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    # Read back in this process, not one of the jobs', pointed at the server as any client would be.
    with restored({"MLFLOW_TRACKING_URI": uri}):
        report = _read_back(uri, EXPERIMENT, out / "read")
    return {"report": report, "sweep_dir": out / "sweep"}


def test_the_sweep_runs_are_finished_named_apart_and_proxied(sweep) -> None:
    report = sweep["report"]
    runs = report["runs"]
    assert len(runs) == 2 and {run["status"] for run in runs} == {"FINISHED"}
    assert {run["tags"]["sweep_id"] for run in runs} == {str(sweep["sweep_dir"])}
    assert sorted(run["name"] for run in runs) == ["simple_cnn-phantom-1.0", "simple_cnn-phantom-1.1"]
    assert report["kind"] == "custom_model_development"
    # Artifacts live behind the server: no path of the machine that ran the jobs is stored.
    assert report["artifact_location"].startswith("mlflow-artifacts:")
    assert all(run["artifact_uri"].startswith("mlflow-artifacts:") for run in runs)


def test_every_metric_is_complete(sweep) -> None:
    for run in sweep["report"]["runs"]:
        metrics = run["metrics"]
        for key in EPOCH_METRICS:
            assert len(metrics[key]) == EPOCHS and len({step for step, _ in metrics[key]}) == EPOCHS, key
        for key in ONCE_METRICS:
            assert len(metrics[key]) == 1, key
        predictions = np.load(Path(run["folder"]) / "reports" / "test_predictions.npz")
        accuracy = float((predictions["probs"].argmax(1) == predictions["labels"]).mean())
        assert metrics["test/acc"][0][1] == pytest.approx(accuracy)


def test_every_artifact_comes_back_whole(sweep) -> None:
    for run in sweep["report"]["runs"]:
        assert run["downloaded"] == run["listed"]  # every listed file, at its listed size
        for needed in ("config/config.yaml", "config/overrides.yaml", "checkpoints/index.json",
                       "reports/classification_report.json", "reports/test_set.json", "figures/confusion_matrix.png"):
            assert needed in run["listed"], needed
        index = json.loads((Path(run["folder"]) / "checkpoints" / "index.json").read_text())
        selected = index["checkpoints"][index["selected"]]
        # Only the selected checkpoint is uploaded (the default), byte for byte the job's own file.
        assert [p for p in run["listed"] if p.endswith(".ckpt")] == [selected["file"]]
        local = Path(selected["local_path"])
        assert local.is_relative_to(sweep["sweep_dir"])
        assert run["sha256"][selected["file"]] == hashlib.sha256(local.read_bytes()).hexdigest()
        assert all(Path(entry["local_path"]).is_file() for entry in index["checkpoints"].values())
        # The MLflow Model of the run, stored behind the server too.
        assert {"MLmodel", "artifacts/weights.pt", "serving_input_example.json"} <= set(run["model_files"])
