"""Resuming with a larger `trainer.max_epochs` continues the cosine schedule over the new horizon."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from heatlens.models import HeatlensModule

BASE_LR = 0.01


class Items(TensorDataset):
    def __getitem__(self, i: int) -> dict:
        image, label = super().__getitem__(i)
        return {"image": image, "label": label, "index": torch.tensor(i)}


class LearningRates(L.Callback):
    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])


def _config(max_epochs: int) -> dict:
    return {"backbone": {"name": "simple_cnn", "width": 4}, "head": {"name": "timm"},
            "optimizer": {"_target_": "torch.optim.SGD", "lr": BASE_LR},
            "scheduler": {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "T_max": max_epochs, "eta_min": 0.0}}


def _fit(max_epochs: int, tmp_path, ckpt_path=None) -> list[float]:
    L.seed_everything(0)
    data = Items(torch.randn(16, 1, 16, 16), torch.arange(16) % 2)
    module = HeatlensModule(_config(max_epochs), ["a", "b"], in_chans=1)
    rates = LearningRates()
    trainer = L.Trainer(max_epochs=max_epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", limit_val_batches=0,
                        callbacks=[rates, ModelCheckpoint(dirpath=tmp_path, filename="last", monitor=None)])
    trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=8), ckpt_path=ckpt_path)
    return rates.seen


def test_a_longer_horizon_keeps_the_learning_rate_decreasing(tmp_path) -> None:
    first = _fit(2, tmp_path)
    resumed = _fit(5, tmp_path, ckpt_path=tmp_path / "last.ckpt")
    history = first + resumed
    assert len(history) == 5
    assert all(later < earlier for earlier, later in zip(history, history[1:])), history
    # From the resume on: a cosine from the LR of the last trained epoch (epoch 1) down to 0 at epoch 5.
    last_used = BASE_LR * (1 + math.cos(math.pi * 1 / 2)) / 2
    expected = [last_used * (1 + math.cos(math.pi * (epoch - 1) / 4)) / 2 for epoch in range(2, 5)]
    assert resumed == pytest.approx(expected)


def test_resuming_twice_continues_the_continued_schedule(tmp_path) -> None:
    _fit(2, tmp_path)
    second = _fit(4, tmp_path, ckpt_path=tmp_path / "last.ckpt")
    third = _fit(6, tmp_path, ckpt_path=tmp_path / "last.ckpt")
    history = second + third
    assert len(history) == 4 and all(later < earlier for earlier, later in zip(history, history[1:])), history
