"""A trial of an Optuna sweep reports `selection_metric` after each validation epoch and stops early
when the study's pruner says so (median, Hyperband, ...).

The sweeper names the trial in the job's config (`trial.*`, see heatlens.sweep.job); the pruner is
the sweep's `hydra.sweeper.pruner`. `TrialPruned` reaches the entry point, which marks the MLflow
run `pruned` and re-raises so that the sweeper tells the study PRUNED.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback
from optuna import TrialPruned

from heatlens.sweep.job import sweep_trial
from heatlens.sweep.study import MLFLOW_RUN_ID
from heatlens.tracking.logger import run_reference

__all__ = ["TrialPruned", "TrialPruning", "trial_callbacks"]


class TrialPruning(Callback):
    """Reports `monitor` each validation epoch (rank 0). Once the pruner says so, training stops at
    the end of that epoch (its checkpoints are written at train-epoch end) and TrialPruned is raised
    on every rank when training ends, before any testing or explaining."""

    def __init__(self, trial: optuna.trial.Trial, monitor: str) -> None:
        self.trial = trial
        self.monitor = monitor
        self._verdict: str | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        reference = run_reference(trainer) if trainer.is_global_zero else None
        if reference:
            self.trial.set_user_attr(MLFLOW_RUN_ID, reference["run_id"])

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self._verdict is not None:
            return
        verdict = None
        if trainer.is_global_zero:
            value = trainer.callback_metrics.get(self.monitor)
            if value is not None:
                epoch, value = trainer.current_epoch, float(value)
                self.trial.report(value, step=epoch)
                if self.trial.should_prune():
                    verdict = f"trial {self.trial.number} pruned at epoch {epoch}: {self.monitor}={value:.4g}"
        self._verdict = trainer.strategy.broadcast(verdict)
        if self._verdict is not None:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._verdict is not None:
            raise TrialPruned(self._verdict)


def trial_callbacks(cfg: Any) -> list[Callback]:
    """[TrialPruning] when the job is a trial of the Optuna sweeper, else []."""
    trial = sweep_trial(cfg)
    return [] if trial is None else [TrialPruning(trial, str(cfg.selection_metric))]
