"""DDP inside a Hydra multirun: each job runs its own process group with its own device count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from callbacks_helpers import run_entry_point
from mlflow.tracking import MlflowClient

from heatlens.cli.ddp import HydraJobDDPStrategy, _config_flags, _override_key, ddp_strategy


@pytest.mark.slow
def test_train_multirun_with_ddp_jobs_of_different_device_counts(store: dict[str, str], tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run_entry_point(["train.py", "-m", "trainer=ddp_cpu", "trainer.devices=2,1", "data.num_images=80",
                     "data.image_size=32", "data.source_size=32", "trainer.max_epochs=1", "callbacks=none",
                     "trainer.num_sanity_val_steps=0", "explain.max_images=12", "explain.aopc.region_size=16",
                     "logger.experiment_name=multirun_ddp", "logger.figures=false", f"hydra.sweep.dir={sweep_dir}"], store, timeout_s=500)
    client = MlflowClient(store["MLFLOW_TRACKING_URI"])
    runs = client.search_runs(client.get_experiment_by_name("multirun_ddp").experiment_id)
    # Exactly one MLflow run per job: no child rank created one, no child replayed the sweep.
    assert sorted(r.data.params["trainer.devices"] for r in runs) == ["1", "2"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["sweep_id"] for r in runs} == {str(sweep_dir.resolve())}
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    for run in runs:
        # The post-fit explanations ran in every job, on all 8 test images once (DDP repeats dropped).
        assert "xai/aopc_morf" in run.data.metrics and "xai/loc/lesion/auc" in run.data.metrics
        local = client.download_artifacts(run.info.run_id, "explain/gradcam.npz", str(tmp_path / run.info.run_id))
        with np.load(local) as arrays:
            assert len(arrays["ids"]) == len(set(arrays["ids"].tolist())) == 8


def test_only_subprocess_ddp_names_are_replaced() -> None:
    assert isinstance(ddp_strategy("ddp"), HydraJobDDPStrategy)
    replaced = ddp_strategy("ddp_find_unused_parameters_true")
    assert isinstance(replaced, HydraJobDDPStrategy) and replaced._ddp_kwargs["find_unused_parameters"]
    assert ddp_strategy("ddp_spawn") == "ddp_spawn"
    assert ddp_strategy("auto") == "auto"


def test_child_command_keeps_config_flags_and_override_keys_are_parsed() -> None:
    argv = ["-m", "--config-name=train", "-cp", "/conf", "a=1,2", "-cd", "/extra"]
    assert _config_flags(argv) == ["--config-name=train", "-cp", "/conf", "-cd", "/extra"]
    assert _override_key("hydra.sweep.dir=/x") == "hydra.sweep.dir"
    assert _override_key("++hydra.mode=MULTIRUN") == "hydra.mode"
    assert _override_key("hydra/launcher=basic") == "hydra/launcher"
    assert _override_key("~backbone@model=x") == "backbone"
