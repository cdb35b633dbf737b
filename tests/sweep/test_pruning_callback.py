"""The Lightning callback of a sweep trial, on a real (tiny) training: it reports the monitored value
of every validation epoch to the stored trial, and a pruner's verdict stops training after that
epoch's checkpoint is written."""

from __future__ import annotations

import os

import lightning as L
import optuna
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from heatlens.callbacks.pruning import TrialPruned, TrialPruning, trial_callbacks
from heatlens.sweep import TrialRef, load_trial, open_study, resolve_storage
from heatlens.sweep.study import MLFLOW_RUN_ID

optuna.logging.set_verbosity(optuna.logging.WARNING)
MONITOR = "val/score"


class Regression(L.LightningModule):
    """y = 2x fitted by one weight; logs the negative validation MSE as `val/score`."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.scores: list[float] = []

    def training_step(self, batch, _):
        x, y = batch
        return torch.mean((self.weight * x - y) ** 2)

    def validation_step(self, batch, _):
        x, y = batch
        self.log(MONITOR, -torch.mean((self.weight * x - y) ** 2))

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.scores.append(float(self.trainer.callback_metrics[MONITOR]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class PruneFromSecondEpoch(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.last_step is not None and trial.last_step >= 1


def loaders() -> tuple[DataLoader, DataLoader]:
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    data = TensorDataset(x, 2 * x)
    return DataLoader(data, batch_size=8), DataLoader(data, batch_size=32)


def stored_trial(tmp_path, pruner) -> tuple[TrialRef, optuna.trial.Trial]:
    storage = resolve_storage(None, tmp_path)
    study, _ = open_study(storage.open(), "cb", "maximize", optuna.samplers.RandomSampler(seed=0), None)
    ref = TrialRef(study.ask().number, "cb", storage.spec)
    return ref, load_trial(ref, pruner)


def fit(tmp_path, trial: optuna.trial.Trial, logger=False) -> tuple[Regression, ModelCheckpoint]:
    L.seed_everything(0)
    module = Regression()
    every_epoch = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1)
    trainer = L.Trainer(
        max_epochs=4, callbacks=[TrialPruning(trial, MONITOR), every_epoch], logger=logger, accelerator="cpu",
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )
    train, val = loaders()
    trainer.fit(module, train, val)
    return module, every_epoch


def test_every_validation_epoch_is_reported_and_nothing_is_pruned_without_a_pruner(tmp_path) -> None:
    ref, trial = stored_trial(tmp_path, pruner=None)
    logger = MLFlowLogger(experiment_name="pruning-callback", tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    module, _ = fit(tmp_path, trial, logger=logger)
    stored = load_trial(ref, None).study.trials[ref.number]
    assert stored.intermediate_values == dict(enumerate(module.scores))
    assert len(module.scores) == 4 and module.scores[-1] > module.scores[0]  # it did learn
    assert stored.user_attrs[MLFLOW_RUN_ID] == logger.run_id


def test_a_pruned_trial_stops_after_the_epoch_the_pruner_judged_and_keeps_its_checkpoints(tmp_path) -> None:
    ref, trial = stored_trial(tmp_path, pruner=PruneFromSecondEpoch())
    with pytest.raises(TrialPruned, match=f"trial {ref.number} pruned at epoch 1: val/score="):
        fit(tmp_path, trial)
    stored = load_trial(ref, None).study.trials[ref.number]
    assert sorted(stored.intermediate_values) == [0, 1]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch=0.ckpt", "epoch=1.ckpt"]


def test_trial_callbacks_only_inside_a_sweep_trial(tmp_path) -> None:
    assert trial_callbacks(OmegaConf.create({"selection_metric": MONITOR})) == []
    ref, _ = stored_trial(tmp_path, pruner=None)
    cfg = OmegaConf.create({"selection_metric": MONITOR, "trial": vars(ref)})
    (callback,) = trial_callbacks(cfg)
    assert isinstance(callback, TrialPruning) and callback.monitor == MONITOR
    assert callback.trial.number == ref.number
