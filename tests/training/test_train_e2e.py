"""`python train.py` end to end on a tiny phantom set; everything checked through MlflowClient.

The runs are in this process (in_process.py: the Hydra task with a patched argv); the bad-value test
runs the real script as the entry point's subprocess smoke test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from in_process import Result, run_main
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient

from heatlens.cli.explain import main as explain_main
from heatlens.cli.train import main as train_main
from heatlens.data import build_datamodule
from heatlens.models import HeatlensModule, build_model, normalization_for
from heatlens.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow

CLASSES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
TINY = [
    "data.num_images=80", "data.image_size=32", "data.source_size=48", "data.batch_size=16",
    "trainer.max_epochs=2", "explain=none", "callbacks=none", "logger.figures=false",
]


def command(*overrides: str) -> list[str]:
    """train.py's arguments: the tiny settings, then `overrides` (flags such as -m first, as argparse wants)."""
    flags = [o for o in overrides if o.startswith("-")]
    overrides = tuple(o for o in overrides if not o.startswith("-"))
    given = {o.split("=", 1)[0] for o in overrides}
    tiny = [o for o in TINY if o.split("=", 1)[0] not in given]  # Hydra refuses a group chosen twice
    return [*flags, *tiny, *overrides]


def train(*overrides: str, experiment: str, python_path: Path | None = None) -> Result:
    """`python train.py ...` in this process (see in_process.py)."""
    env = {"PYTHONPATH": str(python_path)} if python_path else {}  # for the launcher's worker processes
    return run_main(train_main, *command(*overrides, f"logger.experiment_name={experiment}"), env=env)


def train_subprocess(*overrides: str, experiment: str, python_path: Path | None = None) -> subprocess.CompletedProcess:
    """The real `python train.py ...`: the smoke test of the script itself, and jobs that signal their own
    process (a SIGKILL in-process would take the pytest worker down with it)."""
    arguments = command(*overrides, f"logger.experiment_name={experiment}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(python_path), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "train.py"), *arguments], capture_output=True,
                          text=True, env=env, timeout=300)


def runs_of(experiment: str) -> list:
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


def artifact(run_id: str, path: str, tmp_path: Path) -> Path:
    return Path(download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(tmp_path)))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("first")
    result = train(f"hydra.run.dir={out}", "logger.figures=true", experiment="train-e2e")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_of("train-e2e")
    return run, out, result


def test_run_records_params_tags_and_metrics(first_run) -> None:
    run, out, result = first_run
    assert run.info.status == "FINISHED" and run.info.run_name == "simple_cnn-phantom-1"
    tags = run.data.tags
    assert tags["backbone"] == "simple_cnn" and tags["dataset"] == "phantom" and tags["sweep_id"] == "none"
    # A commit of this checkout (HEAD may move while the suite runs), or "unknown" outside git.
    known = subprocess.run(["git", "cat-file", "-e", f"{tags['git_commit']}^{{commit}}"], cwd=PROJECT_ROOT)
    assert tags["git_commit"] == "unknown" or (len(tags["git_commit"]) == 40 and known.returncode == 0)
    params = run.data.params
    assert params["backbone.name"] == "simple_cnn" and params["trainer.max_epochs"] == "2"
    assert params["data.num_images"] == "80" and params["optimizer.lr"] == "0.001"

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 2
    for name in CLASSES:
        assert len(client.get_metric_history(run.info.run_id, f"val/recall/{name}")) == 2
        for metric in ("precision", "recall", "f1", "auroc"):
            assert f"test/{metric}/{name}" in run.data.metrics
    for key in ("val/loss", "val/acc", "val/recall_disease_mean", "test/acc", "test/f1_macro", "test/recall_macro"):
        assert key in run.data.metrics
    net = build_model({"name": "simple_cnn", "width": 16}, {"name": "timm"}, num_classes=4, in_chans=1)
    assert run.data.metrics["model/params_total"] == sum(p.numel() for p in net.parameters())
    assert run.data.metrics["model/params_trainable"] == run.data.metrics["model/params_total"]
    assert run.data.metrics["model/depth"] == 5  # 4 convs + 1 linear
    assert f"heatlens-ui --backend-store-uri {os.environ['MLFLOW_TRACKING_URI']}" in result.stdout


def test_run_artifacts_reports_and_checkpoints(first_run, tmp_path) -> None:
    run, out, _ = first_run
    run_id = run.info.run_id
    config = yaml.safe_load(artifact(run_id, "config/config.yaml", tmp_path).read_text())
    assert config["backbone"]["name"] == "simple_cnn" and config["data"]["num_images"] == 80
    assert "trainer.max_epochs=2" in yaml.safe_load(artifact(run_id, "config/overrides.yaml", tmp_path).read_text())
    for figure in ("confusion_matrix", "roc", "val_recall_history"):
        assert artifact(run_id, f"figures/{figure}.png", tmp_path).read_bytes()[:4] == b"\x89PNG"
    report = yaml.safe_load(artifact(run_id, "reports/classification_report.json", tmp_path).read_text())
    test_set = yaml.safe_load(artifact(run_id, "reports/test_set.json", tmp_path).read_text())
    assert run.data.tags["test_hash"] == test_set["hash"] and test_set["count"] == len(test_set["ids"])
    assert report["macro avg"]["support"] == test_set["count"]

    # The test metrics are those of the stored predictions...
    predictions = np.load(artifact(run_id, "reports/test_predictions.npz", tmp_path))
    accuracy = (predictions["probs"].argmax(1) == predictions["labels"]).mean()
    assert run.data.metrics["test/acc"] == pytest.approx(accuracy)
    assert sorted(predictions["ids"].tolist()) == sorted(test_set["ids"])

    # ...and the predictions are those of the uploaded selected checkpoint: the only one uploaded by
    # default (logger.upload_checkpoints=selected); the index lists every checkpoint written.
    expected = {f"best-recall-{c.replace(' ', '_')}.ckpt" for c in CLASSES}
    expected |= {"best-recall_disease_mean.ckpt", "best-recall_macro.ckpt", "last.ckpt"}
    assert expected <= {p.name for p in (out / "checkpoints").iterdir()}
    selected = run.data.tags["selected_checkpoint"]
    assert selected == "checkpoints/best-recall_macro.ckpt"
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert {Path(a.path).name for a in client.list_artifacts(run_id, "checkpoints")} == {"best-recall_macro.ckpt", "index.json"}
    index = yaml.safe_load(artifact(run_id, "checkpoints/index.json", tmp_path).read_text())
    assert {Path(entry["local_path"]).name for entry in index["checkpoints"].values()} == expected
    module = HeatlensModule.load_from_checkpoint(artifact(run_id, selected, tmp_path), map_location="cpu").eval()
    mean, std = normalization_for(config["backbone"], 1)
    datamodule = build_datamodule(config["data"], mean=mean, std=std)
    datamodule.setup("test")
    rows = {sample_id: row for row, sample_id in enumerate(datamodule.test_dataset.ids)}
    images = torch.stack([datamodule.test_dataset[rows[i]]["image"] for i in predictions["ids"].tolist()])
    with torch.no_grad():
        probs = module.net(images).softmax(1).numpy()
    # Loose tolerance: the test pass ran in another process on batches of another size.
    np.testing.assert_allclose(probs, predictions["probs"], atol=2e-3)


def test_resume_from_last_checkpoint_continues_the_same_run(first_run, tmp_path) -> None:
    run, out, _ = first_run
    result = train(f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=3",
                   f"hydra.run.dir={tmp_path / 'resumed'}", experiment="train-e2e")
    assert result.returncode == 0, result.stderr[-3000:]
    (resumed,) = runs_of("train-e2e")
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 3  # epochs 0, 1 then 2
    last = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2  # the resumed job writes beside the checkpoint it resumed from
    assert len(client.get_metric_history(run.info.run_id, "val/recall/COVID")) == 3
    assert resumed.data.params["trainer.max_epochs"] == "2"  # MLflow params never change...
    resumed_config = yaml.safe_load(artifact(run.info.run_id, "config/resumed/1/config.yaml", tmp_path).read_text())
    assert resumed_config["trainer"]["max_epochs"] == 3  # ...the resumed job's config is kept beside them


def test_multirun_gives_one_run_per_job_and_a_failing_job_is_recorded(tmp_path) -> None:
    """Job 0 crashes mid-fit (after its first checkpoints), job 1, run beside it by the joblib launcher,
    completes: both runs share the sweep id."""
    result = train(
        "-m", "hydra/launcher=parallel", "+callbacks.crash._target_=crash_callback.CrashAtEpoch",
        "+callbacks.crash.epoch=1,99",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", experiment="train-sweep", python_path=Path(__file__).parent,
    )
    assert result.returncode != 0  # the sweep reports its failed job
    runs = {run.data.params["callbacks.crash.epoch"]: run for run in runs_of("train-sweep")}
    assert set(runs) == {"1", "99"}
    assert {run.data.tags["sweep_id"] for run in runs.values()} == {str(tmp_path / "sweep")}
    assert runs["99"].info.status == "FINISHED" and "test/acc" in runs["99"].data.metrics
    failed = runs["1"]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["error"] == "RuntimeError: planted crash at epoch 1"
    assert "planted crash" in artifact(failed.info.run_id, "reports/error.txt", tmp_path).read_text()
    assert (tmp_path / "sweep" / "0" / "checkpoints" / "last.ckpt").is_file()  # kept for a resume


def test_user_error_is_one_clear_line_and_creates_no_run(tmp_path) -> None:
    result = train_subprocess("data.healthy_class=Healthy", f"hydra.run.dir={tmp_path}", experiment="train-bad")
    assert result.returncode == 2  # a user error, as argparse exits (heatlens.cli.exits)
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    # Named as the user typed it, as argparse does (`heatlens-train` for the installed command).
    assert last_line.startswith("train.py: error:") and "Healthy" in last_line
    assert not runs_of("train-bad")


def test_a_run_without_uploaded_checkpoints_is_explained_from_its_local_file(tmp_path) -> None:
    result = train("logger.upload_checkpoints=none", f"hydra.run.dir={tmp_path / 'run'}", experiment="train-local")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_of("train-local")
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert [Path(a.path).name for a in client.list_artifacts(run.info.run_id, "checkpoints")] == ["index.json"]
    assert "selected_checkpoint" not in run.data.tags
    explain = run_main(explain_main, f"run_id={run.info.run_id}", "explain.max_images=8",
                       "explain.aopc.region_size=8", f"hydra.run.dir={tmp_path / 'explain'}",
                       program="heatlens-explain")
    assert explain.returncode == 0, explain.stderr[-3000:]
    child = next(r for r in runs_of("train-local") if r.info.run_id != run.info.run_id)
    assert child.info.status == "FINISHED" and child.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert child.data.tags["explained_checkpoint"] == str(tmp_path / "run" / "checkpoints" / "best-recall_macro.ckpt")
    assert child.data.tags["test_hash"] == run.data.tags["test_hash"]  # the test set it rebuilt
    assert "xai/aopc_morf" in child.data.metrics
