"""Optimizers and LR schedulers by config name (`optimizer.name`, `scheduler.name`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from heatlens.models.errors import ModelConfigError

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
SCHEDULERS = {
    "cosine": torch.optim.lr_scheduler.CosineAnnealingLR,
    "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau,
    "step": torch.optim.lr_scheduler.StepLR,
}
# Keys of the scheduler node that configure Lightning, not the torch scheduler.
LIGHTNING_SCHEDULER_KEYS = ("name", "monitor", "interval", "frequency")


def build_optimizer(optimizer_cfg: Mapping[str, Any], params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """`optimizer.name` (adam | sgd | rmsprop) with the node's other keys as keyword arguments."""
    name = optimizer_cfg.get("name")
    if name not in OPTIMIZERS:
        raise ModelConfigError(f"optimizer.name={name!r}: choose one of {sorted(OPTIMIZERS)}")
    options = {k: v for k, v in optimizer_cfg.items() if k != "name"}
    try:
        return OPTIMIZERS[name](params, **options)
    except (TypeError, ValueError) as err:
        raise ModelConfigError(f"optimizer={name} with options {options}: {err}") from None


def build_scheduler(
    scheduler_cfg: Mapping[str, Any] | None, optimizer: torch.optim.Optimizer
) -> dict[str, Any] | None:
    """Lightning's lr_scheduler dict for `scheduler.name` (none | cosine | plateau | step)."""
    name = (scheduler_cfg or {}).get("name", "none")
    if name == "none":
        return None
    if name not in SCHEDULERS:
        raise ModelConfigError(f"scheduler.name={name!r}: choose one of {['none', *SCHEDULERS]}")
    options = {k: v for k, v in scheduler_cfg.items() if k not in LIGHTNING_SCHEDULER_KEYS}
    try:
        scheduler = SCHEDULERS[name](optimizer, **options)
    except (TypeError, ValueError) as err:
        raise ModelConfigError(f"scheduler={name} with options {options}: {err}") from None
    config = {"scheduler": scheduler, "interval": scheduler_cfg.get("interval", "epoch")}
    if scheduler_cfg.get("monitor"):
        config["monitor"] = scheduler_cfg["monitor"]
    return config
