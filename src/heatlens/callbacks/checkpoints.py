"""One best checkpoint per class recall, one for the disease mean, plus `last` (which names its MLflow run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from heatlens.tracking.reports import slug
from heatlens.tracking.setup import run_reference

DISEASE_MEAN = "val/recall_disease_mean"
LAST = "last"
CHECKPOINT_KEY = "heatlens"


def recall_checkpoints(class_names: list[str], dirpath: str | Path) -> dict[str, ModelCheckpoint]:
    """Monitor name -> ModelCheckpoint: `val/recall/<Class>` per class, the disease mean, and `last`.

    Best checkpoints hold weights only (they are for testing and explaining); `last.ckpt` holds the
    full training state for a resume.
    """
    monitors = [f"val/recall/{name}" for name in class_names] + [DISEASE_MEAN]
    callbacks = {
        monitor: ModelCheckpoint(
            dirpath=dirpath,
            filename="best-" + slug(monitor.removeprefix("val/").replace("/", "-")),
            monitor=monitor,
            mode="max",
            save_top_k=1,
            save_weights_only=True,
            auto_insert_metric_name=False,
        )
        for monitor in monitors
    }
    # Without a monitor, top-1 is the newest epoch; Lightning's own `save_last` only writes when a
    # monitored checkpoint was saved in the same step.
    callbacks[LAST] = ModelCheckpoint(dirpath=dirpath, filename=LAST, monitor=None, save_top_k=1,
                                      enable_version_counter=False)
    return callbacks


def checkpoint_files(callbacks: dict[str, ModelCheckpoint]) -> dict[str, str]:
    """Monitor -> checkpoint path that exists on disk (best per monitor, and `last`)."""
    files = {monitor: cb.best_model_path for monitor, cb in callbacks.items()}
    return {monitor: path for monitor, path in files.items() if path and Path(path).is_file()}


class RunInCheckpoint(Callback):
    """Stores where the MLflow run is in every checkpoint, so `ckpt_path=...` continues that run."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        reference = run_reference(trainer)
        if reference and reference["run_id"]:
            checkpoint[CHECKPOINT_KEY] = {"mlflow": reference}


def run_in_checkpoint(ckpt_path: str | Path) -> dict[str, str] | None:
    """The MLflow run reference saved by RunInCheckpoint, or None."""
    checkpoint = torch.load(str(ckpt_path), map_location="cpu", mmap=True, weights_only=False)
    return checkpoint.get(CHECKPOINT_KEY, {}).get("mlflow")


def checkpoint_epoch(ckpt_path: str | Path) -> int | None:
    """The (0-based) epoch a checkpoint was saved in."""
    checkpoint = torch.load(str(ckpt_path), map_location="cpu", mmap=True, weights_only=False)
    return checkpoint.get("epoch")
