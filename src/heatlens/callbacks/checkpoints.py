"""Best checkpoints per class recall, per disease mean and macro recall, plus `last` (which names its MLflow run).

A plain "max of the monitor" rule lets a model that predicts one class everywhere win that class's
recall (1.0) and tie with every better model. Here an epoch's selection key is (better than chance,
monitor within `tolerance`, tie-break metrics): a constant classifier's macro recall is exactly
1/C, so it never beats an epoch that separates the classes, and near-ties go to the better model.
Multi-label runs keep the best checkpoint per finding's validation AUROC and of the macro AUROC, by
the same rules with macro AUROC in place of macro recall (a constant model's macro AUROC is 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from heatlens.models.checkpoint_read import load_checkpoint
from heatlens.naming import slug
from heatlens.tracking.logger import run_reference

MACRO_RECALL = "val/recall_macro"
MACRO_AUROC = "val/auroc_macro"
DISEASE_MEAN = "val/recall_disease_mean"
VAL_LOSS = "val/loss"
LAST = "last"
CHECKPOINT_KEY = "heatlens"


@dataclass(frozen=True)
class SelectionKey:
    """How one epoch ranks for one monitor; compared with `better_than`."""

    beats_chance: bool
    score: float
    tie_breaks: tuple[float, ...]

    def better_than(self, best: SelectionKey, tolerance: float) -> bool:
        if self.beats_chance != best.beats_chance:
            return self.beats_chance
        if abs(self.score - best.score) > tolerance:
            return self.score > best.score
        return self.tie_breaks > best.tie_breaks


def _value(metrics: dict[str, Any], name: str) -> float:
    value = metrics.get(name)
    value = float(value) if value is not None else float("nan")
    return -math.inf if math.isnan(value) else value


class SelectionCheckpoint(ModelCheckpoint):
    """Keeps the best epoch of `monitor` (mode max) by `SelectionKey`: epochs whose `overall` metric
    (macro recall; macro AUROC in multi-label runs) exceeds chance (1/C; 0.5 for AUROC) first, then
    the monitor (differences up to `tolerance` count as ties), then `overall` and the negative
    validation loss."""

    def __init__(self, monitor: str, num_classes: int, tolerance: float, overall: str = MACRO_RECALL,
                 **kwargs: Any) -> None:
        super().__init__(monitor=monitor, mode="max", save_top_k=1, **kwargs)
        self.num_classes = num_classes
        self.tolerance = tolerance
        self.overall = overall
        self.chance = 0.5 if overall == MACRO_AUROC else 1.0 / num_classes
        self.best_key: SelectionKey | None = None

    def selection_key(self, metrics: dict[str, Any]) -> SelectionKey:
        overall = _value(metrics, self.overall)
        tie_breaks = (-_value(metrics, VAL_LOSS),) if self.monitor == self.overall else (
            overall, -_value(metrics, VAL_LOSS))
        # A one-class model scores exactly 1/C (a constant one 0.5 AUROC); the margin absorbs float error.
        return SelectionKey(overall > self.chance + 1e-6, _value(metrics, self.monitor), tie_breaks)

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if current is None:
            return False
        key = self.selection_key(trainer.callback_metrics)
        better = self.best_key is None or key.better_than(self.best_key, self.tolerance)
        better = trainer.strategy.reduce_boolean_decision(bool(better))
        if better:
            self.best_key = key
        return better

    def state_dict(self) -> dict[str, Any]:
        key = None if self.best_key is None else vars(self.best_key)
        return {**super().state_dict(), "best_key": key}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        key = state_dict.get("best_key")
        if key is not None:
            self.best_key = SelectionKey(key["beats_chance"], key["score"], tuple(key["tie_breaks"]))


def monitors(class_names: list[str], multilabel: bool = False) -> list[str]:
    """Every metric a best checkpoint is kept for: each class's recall, the disease mean, macro recall;
    multi-label: each finding's AUROC and macro AUROC."""
    if multilabel:
        return [f"val/auroc/{name}" for name in class_names] + [MACRO_AUROC]
    return [f"val/recall/{name}" for name in class_names] + [DISEASE_MEAN, MACRO_RECALL]


def recall_checkpoints(class_names: list[str], dirpath: str | Path, tolerance: float = 0.0,
                       multilabel: bool = False) -> dict[str, ModelCheckpoint]:
    """Monitor name -> checkpoint callback: one `SelectionCheckpoint` per monitor, and `last`
    (`best-recall-<Class>.ckpt`, ...; multi-label: `best-auroc-<Finding>.ckpt`, `best-auroc_macro.ckpt`).

    Best checkpoints hold weights only (they are for testing and explaining); `last.ckpt` holds the
    full training state for a resume.
    """
    callbacks: dict[str, ModelCheckpoint] = {
        monitor: SelectionCheckpoint(
            monitor,
            num_classes=len(class_names),
            tolerance=tolerance,
            overall=MACRO_AUROC if multilabel else MACRO_RECALL,
            dirpath=dirpath,
            filename="best-" + slug(monitor.removeprefix("val/").replace("/", "-")),
            save_weights_only=True,
            auto_insert_metric_name=False,
        )
        for monitor in monitors(class_names, multilabel)
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
    checkpoint = load_checkpoint(ckpt_path, "ckpt_path", mmap=True)
    return checkpoint.get(CHECKPOINT_KEY, {}).get("mlflow")


def checkpoint_epoch(ckpt_path: str | Path) -> int | None:
    """The (0-based) epoch a checkpoint was saved in."""
    checkpoint = load_checkpoint(ckpt_path, "checkpoint", mmap=True)
    return checkpoint.get("epoch")
