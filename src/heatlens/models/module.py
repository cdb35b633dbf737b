"""HeatlensModule: cross-entropy training of a HeatlensNet with per-class torchmetrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from heatlens.models.metrics import classification_metrics, named_values
from heatlens.models.net import HeatlensNet, build_model
from heatlens.models.optim import build_optimizer, build_scheduler


class HeatlensModule(L.LightningModule):
    """Holds `.net` and `.class_names`; `hparams.cfg` is the composed config (plain dict).

    After `trainer.test` / `trainer.predict`, `.predictions[stage]` holds that pass's
    `probs` (N, C), `labels` (N,) and `index` (N,) arrays, gathered over ranks and sorted by index.
    """

    def __init__(
        self,
        cfg: Mapping[str, Any],
        class_names: Sequence[str],
        in_chans: int,
        healthy_class: str | None = None,
        class_weights: Sequence[float] | None = None,
        net: HeatlensNet | None = None,
    ) -> None:
        super().__init__()
        # The composed config goes to MLflow as flattened params via heatlens.tracking, not here.
        self.save_hyperparameters(ignore=["net"], logger=False)
        self.class_names = list(class_names)
        self.healthy_class = healthy_class
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
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.loss_fn = nn.CrossEntropyLoss(weight=weight)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_metrics = classification_metrics(num_classes, with_auroc=False)
        self.test_metrics = classification_metrics(num_classes)
        self.predictions: dict[str, dict[str, np.ndarray]] = {}
        self._batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

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
        self.train_acc(logits, batch["label"])
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(batch["label"]))
        return loss

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        logits, _ = self._loss(batch, "val")
        self.val_metrics.update(logits.softmax(-1), batch["label"])

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def on_test_epoch_start(self) -> None:
        self._batches = []

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        logits, _ = self._loss(batch, "test")
        probs = logits.float().softmax(-1)
        self.test_metrics.update(probs, batch["label"])
        self._batches.append((probs.detach(), batch["label"], batch["index"]))

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)
        self.predictions["test"] = self._gather_batches()

    def on_predict_epoch_start(self) -> None:
        self._batches = []

    def predict_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        probs = self(batch["image"]).float().softmax(-1)
        self._batches.append((probs, batch["label"], batch["index"]))

    def on_predict_epoch_end(self) -> None:
        self.predictions["predict"] = self._gather_batches()

    def _log_metrics(self, stage: str, metrics: Any) -> None:
        values = named_values(stage, metrics.compute(), self.class_names, self.healthy_class)
        metrics.reset()
        self.log_dict(values)

    def _gather_batches(self) -> dict[str, np.ndarray]:
        num_classes = len(self.class_names)
        if self._batches:
            probs, labels, index = (torch.cat(parts) for parts in zip(*self._batches))
        else:
            probs = torch.empty(0, num_classes, device=self.device)
            labels = index = torch.empty(0, dtype=torch.long, device=self.device)
        self._batches = []
        if self.trainer.world_size > 1:
            # DistributedSampler gives every rank as many samples, repeating some: gather, then
            # keep one row per dataset index.
            probs, labels, index = (self.all_gather(t).flatten(0, 1) for t in (probs, labels, index))
        index_np = index.cpu().numpy()
        _, first = np.unique(index_np, return_index=True)
        return {
            "probs": probs.cpu().numpy()[first],
            "labels": labels.cpu().numpy()[first],
            "index": index_np[first],
        }

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.hparams.cfg["optimizer"], [p for p in self.parameters() if p.requires_grad])
        scheduler = build_scheduler(self.hparams.cfg.get("scheduler"), optimizer)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
