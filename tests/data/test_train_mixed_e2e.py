"""`python train.py data=image_folder` on a folder mixing `.dcm`, suffix-less DICOM, `.IMA`, PNG and JPEG, with a
corrupt DICOM and a multi-frame one: the run trains, explains, lists the two skipped files and FINISHES."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from data_writers import gradient_image, write_dicom, write_mixed_folder
from in_process import run_main
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient

from heatlens.cli.train import main as train_main

pytestmark = pytest.mark.slow


def test_mixed_folder_trains_explains_and_lists_skipped_files(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    written = write_mixed_folder(root, per_class=20)  # 40 images, 32-48 px
    corrupt = root / "normal" / "CR9" / "6199"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 3)
    cine = write_dicom(root / "pneumonia" / "cine.dcm", np.stack([gradient_image(40, s, np.uint16) for s in range(3)]))
    experiment = "data-mixed-e2e"
    command = [
        "data=image_folder", f"data.root={root}",
        "data.image_size=32", "data.batch_size=8", "data.num_workers=0", "data.on_bad_image=skip",
        "data.dicom_frame=error", "data.resize=pad", "trainer.max_epochs=1", "backbone=simple_cnn",
        "backbone.width=4", "explain=default", "explain.max_images=8", "explain.aopc.region_size=8",
        "callbacks=none", "logger.figures=false", f"logger.experiment_name={experiment}", f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = run_main(train_main, *command)  # in this process (tests/in_process.py)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["data.root"] == str(root) and "xai/aopc_morf" in run.data.metrics
    skipped = json.loads(Path(download_artifacts(run_id=run.info.run_id, artifact_path="reports/skipped_files.json",
                                                 dst_path=str(tmp_path / "artifacts"))).read_text())
    assert sorted(entry["file"] for entry in skipped) == sorted([str(corrupt), str(cine)])
    test_set = json.loads(Path(download_artifacts(run_id=run.info.run_id, artifact_path="reports/test_set.json",
                                                  dst_path=str(tmp_path / "artifacts"))).read_text())
    assert set(test_set["ids"]) <= set(written)
