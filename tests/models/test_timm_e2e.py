"""A ViT and a Swin preset train, test and explain end to end on the phantom at 32-64 px (the patch grid
follows the image size): the ViT under DDP on CPU (two gloo processes, started by `python train.py`), the
Swin in this process (tests/in_process.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from in_process import run_main
from mlflow.tracking import MlflowClient
from stores import sqlite_store

from heatlens.cli.train import main as train_main
from heatlens.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _args(backbone: str, size: int, trainer: str, tmp_path: Path) -> list[str]:
    return [f"backbone={backbone}", f"trainer={trainer}", "data.num_images=40", f"data.image_size={size}",
            f"data.source_size={size}", "data.batch_size=8", "trainer.max_epochs=1", "callbacks=none",
            "trainer.num_sanity_val_steps=0", "explain.max_images=8", f"explain.aopc.region_size={size // 4}",
            "logger.experiment_name=timm_e2e", f"hydra.run.dir={tmp_path / 'run'}"]


def _check_run(tracking_uri: str, backbone: str) -> None:
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("timm_e2e").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["backbone.name"] == backbone
    metrics = run.data.metrics
    assert "xai/aopc_morf" in metrics and "xai/loc/lesion/auc" in metrics


def test_vit_preset_trains_tests_and_explains_under_ddp(tmp_path: Path) -> None:
    backbone = "vit_small_patch16_224"
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_PORT", "MASTER_ADDR", "LOCAL_RANK", "WORLD_SIZE")}
    env |= {"MLFLOW_TRACKING_URI": sqlite_store(tmp_path), "OMP_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore"}
    args = [*_args(backbone, 32, "ddp_cpu", tmp_path), "logger.figures=false"]
    done = subprocess.run([sys.executable, "train.py", *args], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    _check_run(env["MLFLOW_TRACKING_URI"], backbone)


def test_swin_preset_trains_tests_and_explains(tmp_path: Path) -> None:
    backbone, uri = "swin_tiny_patch4_window7_224", sqlite_store(tmp_path)
    # No figures (9 of the run's 21 s): they draw the maps and arrays this run logs, whatever the backbone;
    # tests/callbacks/test_explain_run.py checks every figure of the shared trained run.
    done = run_main(train_main, *_args(backbone, 64, "cpu", tmp_path), "logger.figures=false",
                    env={"MLFLOW_TRACKING_URI": uri})
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    _check_run(uri, backbone)
