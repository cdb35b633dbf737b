"""HeatlensModule: training of a HeatlensNet with per-class torchmetrics: softmax and cross-entropy
(`data.task: multiclass`), or one sigmoid per finding and BCE with unknown labels masked (`multilabel`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR
from torchmetrics.classification import MulticlassAccuracy

from heatlens.clinical import tta_probabilities
from heatlens.models.metrics import (
    MULTILABEL,
    classification_metrics,
    known_targets,
    multilabel_metrics,
    named_values,
)
from heatlens.models.net import HeatlensNet, build_model
from heatlens.models.optim import build_optimizer, build_scheduler


class HeatlensModule(L.LightningModule):
    """Holds `.net` and `.class_names`; `hparams.cfg` is the composed config (plain dict).

    `trainer.predict` returns, per batch, `probs` (B, C), `labels` (B,), dataset `index` (B,) and, with
    `clinical.tta`, `tta_probs` (B, C) of this rank; gathering over ranks is the caller's
    (heatlens.callbacks.distributed.gather_by_index). The task is `cfg["data"]["task"]`; in multilabel
    `probs` are sigmoids, `labels` (B, K) float with NaN for unknown, and `pos_weight` (K,) weighs positives.
    """

    def __init__(
        self,
        cfg: Mapping[str, Any],
        class_names: Sequence[str],
        in_chans: int,
        healthy_class: str | None = None,
        class_weights: Sequence[float] | None = None,
        net: HeatlensNet | None = None,
        pos_weight: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        # The composed config goes to MLflow as flattened params via heatlens.tracking, not here.
        self.save_hyperparameters(ignore=["net"], logger=False)
        self.class_names = list(class_names)
        self.healthy_class = healthy_class
        self.task = str((cfg.get("data") or {}).get("task", "multiclass"))
        num_classes = len(self.class_names)
        # A checkpoint restores the weights: rebuild the architecture without fetching any.
        self.net = net if net is not None else build_model(
            cfg["backbone"], cfg["head"], num_classes, in_chans, load_weights=False
        )
        runtime = cfg.get("model") or {}
        self.channels_last = bool(runtime.get("channels_last", False))
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if runtime.get("compile", False):
            # In place: `net.features`/`net.head` (used by explanations) stay eager.
            self.net.compile()
        if self.multilabel:
            self.loss_fn: nn.Module = MaskedBCEWithLogits(pos_weight)
            # Validation needs AUROC too: it selects the checkpoints.
            self.val_metrics, self.test_metrics = multilabel_metrics(num_classes), multilabel_metrics(num_classes)
            return
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.loss_fn = nn.CrossEntropyLoss(weight=weight)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_metrics = classification_metrics(num_classes, with_auroc=False)
        self.test_metrics = classification_metrics(num_classes)

    @property
    def multilabel(self) -> bool:
        return self.task == MULTILABEL

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Sigmoid per finding (multilabel) or softmax over the classes, in float32."""
        return logits.float().sigmoid() if self.multilabel else logits.float().softmax(-1)

    def _update(self, metrics: Any, logits: torch.Tensor, labels: torch.Tensor) -> None:
        probs = self.probabilities(logits)
        metrics.update(probs, known_targets(labels) if self.multilabel else labels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)

    def _loss(self, batch: Mapping[str, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["image"])
        loss = self.loss_fn(logits, batch["label"])
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True,
                 batch_size=len(batch["label"]))
        return logits, loss

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits, loss = self._loss(batch, "train")
        if self.multilabel:
            return loss
        self.train_acc(logits, batch["label"])
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(batch["label"]))
        return loss

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        logits, _ = self._loss(batch, "val")
        self._update(self.val_metrics, logits, batch["label"])

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        logits, _ = self._loss(batch, "test")
        self._update(self.test_metrics, logits, batch["label"])

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    def predict_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """With `clinical.tta` other than none, also `tta_probs`: the mean over seeded augmented views."""
        probs = self.probabilities(self(batch["image"]))
        out = {"probs": probs.cpu(), "labels": batch["label"].cpu(), "index": batch["index"].cpu()}
        tta = (self.hparams.cfg.get("clinical") or {}).get("tta", "none")
        if tta != "none":
            seed = int(self.hparams.cfg.get("seed", 0)) + batch_idx
            out["tta_probs"] = tta_probabilities(self, batch["image"], tta, seed, self.probabilities).cpu()
        return out

    def _log_metrics(self, stage: str, metrics: Any) -> None:
        values = named_values(stage, metrics.compute(), self.class_names, self.healthy_class)
        metrics.reset()
        self.log_dict(values)

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.hparams.cfg["optimizer"], [p for p in self.parameters() if p.requires_grad])
        scheduler = build_scheduler(self.hparams.cfg.get("scheduler"), optimizer)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_train_start(self) -> None:
        # A resume restores the scheduler as saved; a longer `trainer.max_epochs` must stretch the
        # cosine horizon instead of letting the restored one restart its cycle (the LR would climb).
        horizon = (self.hparams.cfg.get("scheduler") or {}).get("T_max")
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if isinstance(scheduler, CosineAnnealingLR) and horizon and horizon_of(scheduler) != horizon:
                continue_cosine(scheduler, int(horizon), self.trainer.current_epoch)


class MaskedBCEWithLogits(nn.Module):
    """Binary cross-entropy per (image, finding), averaged over the known labels only (NaN = unknown)."""

    def __init__(self, pos_weight: Sequence[float] | None = None) -> None:
        super().__init__()
        weight = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
        self.register_buffer("pos_weight", weight)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        known = ~torch.isnan(labels)
        losses = nn.functional.binary_cross_entropy_with_logits(
            logits.float(), torch.nan_to_num(labels.float(), nan=0.0), pos_weight=self.pos_weight, reduction="none")
        # A batch without any known label contributes zero loss (and zero gradient), not NaN.
        return (losses * known).sum() / known.sum().clamp(min=1)


def horizon_of(scheduler: CosineAnnealingLR) -> int:
    """The last epoch a (possibly continued) cosine schedule decays to."""
    return getattr(scheduler, "heatlens_horizon", scheduler.T_max)


def _cosine(base: float, eta_min: float, step: int, span: int) -> float:
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * step / span)) / 2


def continue_cosine(scheduler: CosineAnnealingLR, horizon: int, next_epoch: int) -> None:
    """From `next_epoch` on, decay by a cosine from the LR the last trained epoch used down to
    `eta_min` at `horizon`: the LR keeps decreasing across the resume."""
    if next_epoch < 1 or horizon <= next_epoch:
        return
    last_used = [_cosine(base, scheduler.eta_min, scheduler.last_epoch - 1, scheduler.T_max)
                 for base in scheduler.base_lrs]
    # The continued schedule counts from the last trained epoch (step 0) to `horizon`; it is stored in
    # the scheduler's own state, so a later resume continues it again.
    scheduler.base_lrs = last_used
    scheduler.T_max = horizon - (next_epoch - 1)
    scheduler.last_epoch = 1
    scheduler.heatlens_horizon = horizon
    for group, base in zip(scheduler.optimizer.param_groups, last_used):
        group["lr"] = _cosine(base, scheduler.eta_min, 1, scheduler.T_max)
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
