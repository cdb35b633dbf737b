"""Checkpoint selection: a model that predicts one class everywhere never wins over one that separates the classes."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader
from toy_data import QuadrantImages

from heatlens.callbacks.checkpoints import LAST, SelectionCheckpoint, SelectionKey, checkpoint_epoch, recall_checkpoints
from heatlens.models import HeatlensModule

CLASSES = ["A", "B", "C"]
CFG = {"backbone": {"name": "simple_cnn", "width": 4}, "head": {"name": "timm"},
       "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.01}, "scheduler": {"_target_": None}}


def test_selection_key_hand_cases() -> None:
    constant = SelectionKey(beats_chance=False, score=1.0, tie_breaks=(1 / 3, -1.1))
    separating = SelectionKey(beats_chance=True, score=0.6, tie_breaks=(0.7, -0.8))
    assert separating.better_than(constant, tolerance=0.0) and not constant.better_than(separating, tolerance=0.0)
    near = SelectionKey(beats_chance=True, score=0.595, tie_breaks=(0.9, -0.5))
    assert near.better_than(separating, tolerance=0.01)  # a near-tie: the better macro recall wins
    assert not near.better_than(separating, tolerance=0.0)  # no tolerance: the score alone decides
    equal = SelectionKey(beats_chance=True, score=0.6, tie_breaks=(0.7, -0.8))
    assert not equal.better_than(separating, tolerance=0.01)  # an exact tie keeps the earlier epoch


def test_macro_recall_monitor_breaks_ties_on_validation_loss() -> None:
    checkpoint = SelectionCheckpoint("val/recall_macro", num_classes=3, tolerance=0.0)
    key = checkpoint.selection_key({"val/recall_macro": torch.tensor(0.9), "val/loss": torch.tensor(0.3)})
    assert key == SelectionKey(True, pytest.approx(0.9), (pytest.approx(-0.3),))
    missing = checkpoint.selection_key({"val/recall_macro": torch.tensor(float("nan"))})
    assert missing.score == -math.inf and not missing.beats_chance


class OneClassFirst(nn.Module):
    """A real, trained net whose logits get a huge bias to class A during the first `epochs` epochs."""

    def __init__(self, net: nn.Module, epochs: int) -> None:
        super().__init__()
        self.net, self.epochs, self.epoch = net, epochs, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        if self.epoch < self.epochs:
            logits = logits + torch.tensor([100.0, 0.0, 0.0])
        return logits


class EpochClock(L.Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.net.epoch = trainer.current_epoch


def test_early_one_class_epochs_are_never_selected(tmp_path) -> None:
    L.seed_everything(0)
    module = HeatlensModule(CFG, CLASSES, in_chans=1, healthy_class="C")
    module.net = OneClassFirst(module.net, epochs=2)  # training and validation see the biased logits
    checkpoints = recall_checkpoints(CLASSES, tmp_path, tolerance=0.01)
    trainer = L.Trainer(max_epochs=6, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", num_sanity_val_steps=0, callbacks=[*checkpoints.values(), EpochClock()])
    trainer.fit(module, train_dataloaders=DataLoader(QuadrantImages(60, 0), batch_size=12, shuffle=True),
                val_dataloaders=DataLoader(QuadrantImages(30, 1), batch_size=15))
    assert trainer.callback_metrics["val/recall_macro"] > 0.9  # the later epochs separate the classes
    for monitor, callback in checkpoints.items():
        if monitor == LAST:
            continue
        # Epochs 0 and 1 predict A everywhere: val/recall/A is 1.0 there, yet they must not be kept.
        assert checkpoint_epoch(callback.best_model_path) >= 2, monitor
        assert callback.best_key.beats_chance


def test_selection_state_survives_a_resume(tmp_path) -> None:
    first = SelectionCheckpoint("val/recall/A", num_classes=3, tolerance=0.01, dirpath=tmp_path)
    first.best_key = SelectionKey(True, 0.8, (0.7, -0.4))
    second = SelectionCheckpoint("val/recall/A", num_classes=3, tolerance=0.01, dirpath=tmp_path)
    second.load_state_dict(first.state_dict())
    assert second.best_key == first.best_key
