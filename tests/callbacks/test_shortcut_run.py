"""`python train.py` on a phantom whose COVID images mostly carry a corner marker: the audit flags COVID,
and the images it calls suspect are the marked ones (manifest.csv `has_shortcut`)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from in_process import run_main
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from heatlens.cli.train import main as train_main
from heatlens.data.formats import phantom_root
from heatlens.data.settings import parse_settings

pytestmark = pytest.mark.slow
# Only the shortcut step runs: the others are tested elsewhere and cost time here.
OTHER_STEPS = [f"explain.callbacks.{name}=null" for name in ("gradcam", "aopc", "heatmap_stats", "embeddings",
                                                               "localisation")]


def test_a_planted_marker_is_flagged_and_its_images_found(store: dict[str, str], tmp_path) -> None:
    done = run_main(train_main, "data.shortcut.fraction=0.8", "data.shortcut.class_name=COVID",  # in this process
                    "data.num_images=800", "data.image_size=48", "data.source_size=48", "trainer.max_epochs=6",
                    "callbacks=none", "trainer.num_sanity_val_steps=0", "explain.max_images=null", *OTHER_STEPS,
                    "logger.experiment_name=shortcut", f"hydra.run.dir={tmp_path / 'run'}", env=store)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    client = MlflowClient(store["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs(client.get_experiment_by_name("shortcut").experiment_id)
    metrics = run.data.metrics
    assert metrics["xai/shortcut/COVID/flag"] == 1 and metrics["xai/shortcut/flagged_classes"] == 1
    assert {p.path for p in client.list_artifacts(run.info.run_id, "figures/shortcut")} >= {"figures/shortcut/COVID.png"}

    audit = np.load(client.download_artifacts(run.info.run_id, "explain/shortcut.npz", str(tmp_path)))
    config = client.download_artifacts(run.info.run_id, "config/config.yaml", str(tmp_path))
    root = phantom_root(parse_settings(OmegaConf.load(config).data))
    with open(root / "manifest.csv", newline="") as table:
        marked = {row["path"]: row["has_shortcut"] == "1" for row in csv.DictReader(table)}
    truth = np.array([marked[sample_id] for sample_id in audit["ids"].tolist()])
    suspect = audit["suspect"].astype(bool)
    assert truth.sum() >= 5  # the test split holds marked images to find
    hits = (truth & suspect).sum()
    assert hits / suspect.sum() >= 0.8 and hits / truth.sum() >= 0.6
