"""`python train.py explain.methods=[gradcam,saliency]` (in process, tiny phantom): every heatmap step logs
under each method's name, Grad-CAM's values are the same under both names, and a default run's names are
those the extra methods leave untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from in_process import run_main
from mlflow.tracking import MlflowClient
from stores import sqlite_store

from heatlens.callbacks.base import method_name
from heatlens.cli.train import main as train_main

pytestmark = pytest.mark.slow

TINY = ["data.num_images=60", "data.image_size=32", "data.source_size=32", "data.batch_size=16", "data.augment=null",
        "trainer.max_epochs=1", "callbacks=none", "trainer.num_sanity_val_steps=0", "explain.max_images=8",
        "explain.callbacks.embeddings=null", "explain.callbacks.gradcam=null", "logger.figures=false"]


def _metrics(tmp_path: Path, name: str, *overrides: str) -> dict[str, float]:
    uri = sqlite_store(tmp_path)
    result = run_main(train_main, *TINY, f"logger.experiment_name={name}", f"hydra.run.dir={tmp_path / name}",
                      *overrides, env={"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    return run.data.metrics


def test_every_step_logs_each_method_and_gradcam_under_both_names(tmp_path: Path) -> None:
    default = _metrics(tmp_path, "default")
    both = _metrics(tmp_path, "methods", "explain.methods=[gradcam,saliency]")
    steps = {"aopc": "xai/aopc_morf", "localisation": "xai/loc/lesion/relevance_mass_accuracy",
             "shortcut": "xai/shortcut/flagged_classes"}
    for legacy in steps.values():
        assert legacy in default
        for method in ("gradcam", "saliency"):
            assert method_name(legacy, method) in both
    # Grad-CAM's values: the same under both names (the run is seeded: the same as the default run's too).
    legacy = {n for n in default if n.startswith("xai/")}
    for name in legacy:
        assert both[method_name(name, "gradcam")] == pytest.approx(both[name], nan_ok=True)
        assert both[name] == pytest.approx(default[name], nan_ok=True, abs=1e-6)
    # The default run logs today's names: the methods run adds only per-method ones and the maps' time.
    assert not [n for n in default if n.startswith(("xai/gradcam/", "xai/saliency/", "time/maps_"))]
    added = set(both) - set(default)
    assert added == {method_name(n, m) for n in legacy for m in ("gradcam", "saliency")} | {"time/maps_saliency_s"}
