"""How runs start: experiment kind, unique run names (also under races), parents, honest states, uploads, paths."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import lightning as L
import pytest
import torch
from mlflow.artifacts import download_artifacts
from mlflow.entities import ViewType
from platformdirs import user_cache_dir
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from heatlens import paths
from heatlens.tracking import (
    HeatlensMLFlowLogger,
    RunHandle,
    TrackingError,
    check_logger_config,
    create_logger,
    git_commit,
    log_checkpoints,
    run_location,
    run_name_for,
)
from heatlens.tracking.names import settle_unique_name
from heatlens.tracking.setup import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND, ensure_experiment

def test_experiments_are_model_training_experiments(experiment) -> None:
    client, experiment_id, name = experiment
    uri = client.tracking_uri
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    # An experiment created elsewhere without a kind gets it; a kind someone chose is kept.
    bare = client.create_experiment(f"{name}-bare")
    ensure_experiment(uri, f"{name}-bare")
    assert client.get_experiment(bare).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    chosen = client.create_experiment(f"{name}-genai", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    ensure_experiment(uri, f"{name}-genai")
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_run_names_count_up_per_base_and_never_reuse_a_deleted_name(experiment) -> None:
    client, experiment_id, name = experiment
    uri = client.tracking_uri
    assert run_name_for(uri, name, "vgg16-phantom") == "vgg16-phantom-1"
    for run_name in ("vgg16-phantom-1", "vgg16-phantom-3", "vgg16-phantom", "vgg16-phantom-x2", "vgg16-phantomic-9"):
        client.create_run(experiment_id, run_name=run_name)
    deleted = client.create_run(experiment_id, run_name="vgg16-phantom-4.1")
    client.delete_run(deleted.info.run_id)
    assert run_name_for(uri, name, "vgg16-phantom") == "vgg16-phantom-5"
    assert run_name_for(uri, name, "densenet201-phantom") == "densenet201-phantom-1"
    assert run_name_for(uri, name, "my model/phantom") == "my_model_phantom-1"  # slugged: no quotes, slashes


def test_jobs_of_one_sweep_share_a_number_and_differ_by_job(experiment) -> None:
    client, experiment_id, name = experiment
    uri = client.tracking_uri
    client.create_run(experiment_id, run_name="simple_cnn-phantom-2")
    # Four jobs starting at once all name themselves before any of their runs exists: still distinct.
    names = [run_name_for(uri, name, "simple_cnn-phantom", job, "multirun/a") for job in range(4)]
    assert names == [f"simple_cnn-phantom-3.{job}" for job in range(4)]
    client.create_run(experiment_id, run_name=names[0], tags={"sweep_id": "multirun/a"})
    # A later job of the same sweep keeps its number; another sweep takes the next one.
    assert run_name_for(uri, name, "simple_cnn-phantom", 7, "multirun/a") == "simple_cnn-phantom-3.7"
    assert run_name_for(uri, name, "simple_cnn-phantom", 0, "multirun/b") == "simple_cnn-phantom-4.0"


def test_two_runs_named_alike_in_a_race_end_with_different_names(experiment) -> None:
    """Worst interleaving of two jobs started at the same instant: both pick the name, then both create."""
    client, experiment_id, name = experiment
    uri = client.tracking_uri
    first_name, second_name = (run_name_for(uri, name, "resnet50-covid") for _ in range(2))
    assert first_name == second_name == "resnet50-covid-1"
    first = client.create_run(experiment_id, run_name=first_name)
    second = client.create_run(experiment_id, run_name=second_name)
    settled = {settle_unique_name(client, first), settle_unique_name(client, second)}
    names = {r.info.run_name for r in client.search_runs([experiment_id], run_view_type=ViewType.ALL)}
    assert len(names) == 2 and names == settled
    assert any(n.startswith("resnet50-covid-1-") for n in names)


class _Tiny(L.LightningModule):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.layer, self.fail = nn.Linear(2, 1), fail

    def training_step(self, batch, batch_idx):
        if self.fail:
            raise RuntimeError("planted")
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(logger: HeatlensMLFlowLogger, fail: bool) -> None:
    trainer = L.Trainer(max_epochs=1, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    loader = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
    trainer.fit(_Tiny(fail), loader)


@pytest.mark.parametrize("fail", [False, True], ids=["fit-ends", "fit-raises"])
def test_lightning_never_ends_the_run(experiment, fail) -> None:
    client, _, name = experiment
    logger = create_logger({"experiment_name": name}, "tiny-phantom", {"sweep_id": "none"})
    assert isinstance(logger, HeatlensMLFlowLogger)
    if fail:
        with pytest.raises(RuntimeError, match="planted"):
            _fit(logger, fail)
    else:
        _fit(logger, fail)
        assert len(client.get_metric_history(logger.run_id, "train/loss")) == 1
    run = client.get_run(logger.run_id)
    assert run.info.status == "RUNNING" and run.info.run_name == "tiny-phantom-1"
    assert run.data.tags["sweep_id"] == "none" and "mlflow.user" in run.data.tags


def test_parent_run_and_resume(experiment) -> None:
    client, experiment_id, name = experiment
    uri = client.tracking_uri
    parent = client.create_run(experiment_id, run_name="sweep-study").info.run_id
    logger = create_logger({"experiment_name": name, "parent_run_id": parent}, "b-d", {"sweep_id": "s"}, job_number=3)
    child = client.get_run(logger.run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent and child.info.run_name == "b-d-1.3"
    resumed = create_logger({"experiment_name": name}, "ignored", {}, run_id=logger.run_id)
    assert resumed.run_id == logger.run_id and len(client.search_runs([experiment_id])) == 2
    with pytest.raises(TrackingError, match="logger.parent_run_id=nope: no such run"):
        create_logger({"experiment_name": name, "parent_run_id": "nope"}, "b-d", {})
    other = ensure_experiment(uri, f"{name}-other")
    stranger = client.create_run(other).info.run_id
    with pytest.raises(TrackingError, match=f"logger.parent_run_id={stranger}: a run of experiment id {other}"):
        create_logger({"experiment_name": name, "parent_run_id": stranger}, "b-d", {})


@pytest.mark.parametrize(("cfg", "message"), [
    ({"upload_checkpoints": "some"}, "logger.upload_checkpoints='some': expected one of ['all', 'selected', 'none']"),
    ({"registered_model_name": ""}, "logger.registered_model_name='': expected a non-empty string or null"),
    ({"parent_run_id": 5}, "logger.parent_run_id=5: expected a non-empty string or null"),
    ({"experiment_name": None}, "logger.experiment_name=None: expected a non-empty string"),
    ({"figures": "no"}, "logger.figures='no': expected true or false"),
])
def test_logger_config_errors_name_the_key(cfg, message) -> None:
    with pytest.raises(TrackingError) as error:
        check_logger_config({"experiment_name": "e", **cfg})
    assert str(error.value) == message
    check_logger_config({"experiment_name": "e", "upload_checkpoints": "none", "registered_model_name": "m"})


@pytest.mark.parametrize(("upload", "uploaded"), [
    ("all", {"best-a.ckpt", "best-b.ckpt", "last.ckpt"}), ("selected", {"best-b.ckpt"}), ("none", set()),
])
def test_checkpoint_upload_policy_and_index(experiment, tmp_path, upload, uploaded) -> None:
    client, experiment_id, _ = experiment
    uri = client.tracking_uri
    run = RunHandle(uri, client.create_run(experiment_id).info.run_id)
    files = {}
    for monitor, file in (("val/recall/A", "best-a.ckpt"), ("val/recall/B", "best-b.ckpt"), ("last", "last.ckpt")):
        (tmp_path / file).write_bytes(file.encode())
        files[monitor] = str(tmp_path / file)
    scores = {"val/recall/A": 0.5, "val/recall/B": 0.75, "last": None}
    log_checkpoints(run, files, scores, "val/recall/B", upload=upload)

    listed = {Path(a.path).name for a in client.list_artifacts(run.run_id, "checkpoints")}
    assert listed == uploaded | {"index.json"}
    index = json.loads(Path(download_artifacts(run_id=run.run_id, artifact_path="checkpoints/index.json",
                                               dst_path=str(tmp_path / "dl"), tracking_uri=uri)).read_text())
    assert index["selected"] == "val/recall/B" and index["upload"] == upload
    assert {m: e["local_path"] for m, e in index["checkpoints"].items()} == files
    assert {m: e["score"] for m, e in index["checkpoints"].items()} == scores
    assert {Path(e["file"]).name for e in index["checkpoints"].values() if e["file"]} == uploaded
    tags = client.get_run(run.run_id).data.tags
    assert tags.get("selected_checkpoint") == (None if upload == "none" else "checkpoints/best-b.ckpt")


def test_run_location_opens_the_machine_learning_view(run) -> None:
    uri = run.tracking_uri
    text = run_location(run)
    assert f"MLflow run {run.run_id}" in text and f"heatlens-ui --backend-store-uri {uri}" in text
    assert f"/runs/{run.run_id}?workflowType=machine_learning" in text


def test_git_commit_of_the_checkout_else_the_build_argument(monkeypatch) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True, text=True)
    monkeypatch.setenv("HEATLENS_GIT_COMMIT", "from-the-image")
    assert git_commit() == (head.stdout.strip() if head.returncode == 0 else "from-the-image")
    monkeypatch.setattr("heatlens.tracking.setup.source_checkout", lambda: None)  # a wheel or an image without .git
    assert git_commit() == "from-the-image"
    monkeypatch.delenv("HEATLENS_GIT_COMMIT")
    assert git_commit() == "unknown"


def test_home_cache_and_config_folders(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HEATLENS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.home_dir() == tmp_path.resolve()
    monkeypatch.setenv("HEATLENS_HOME", str(tmp_path / "h"))
    assert paths.home_dir() == tmp_path.resolve() / "h"
    monkeypatch.delenv("HEATLENS_CACHE", raising=False)
    assert paths.cache_dir() == Path(user_cache_dir("heatlens"))
    monkeypatch.setenv("HEATLENS_CACHE", str(tmp_path / "c"))
    assert paths.cache_dir() == tmp_path / "c"
    # A checkout (this one) reads its top-level conf/; a wheel its packaged copy (tests/tracking/test_tracking_install.py).
    assert paths.source_checkout() == paths.PROJECT_ROOT and paths.CONFIG_DIR == paths.PROJECT_ROOT / "conf"
