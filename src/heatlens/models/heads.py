"""Classification heads: feature map (B, K, h, w) -> logits (B, C); `penultimate` gives the embedding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from heatlens.models.errors import ModelConfigError

HEADS = ("timm", "gap_linear", "pool_mlp")


class GapLinearHead(nn.Module):
    """Global average pool + (dropout) + linear."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def penultimate(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pool(fmap).flatten(1))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.fc(self.penultimate(fmap))


class PoolMlpHead(nn.Module):
    """Max-pool to a 4x4 grid -> flatten -> dense 64 + ReLU -> dense C.

    The pool is adaptive (output 4x4) rather than a fixed 4x4 window so the head's size does not
    depend on the input resolution and small test images still work.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: int = 64, grid: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveMaxPool2d(grid)
        self.fc1 = nn.Linear(in_features * grid * grid, hidden)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, num_classes)

    def penultimate(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc1(self.pool(fmap).flatten(1)))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.penultimate(fmap))


class TimmHead(nn.Module):
    """The backbone's own timm classifier (pooling, pre-logits MLP, fc) as a module of its own.

    timm keeps these modules on the model object; they are moved here so that the feature
    extractor and the head own disjoint parameters (freezing, optimizer groups, state dict), and
    timm's own `forward_head` code runs on this module, which has the same attribute names.
    """

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        for name in names:
            self.add_module(name, model._modules.pop(name))
        self.drop_rate = getattr(model, "drop_rate", 0.0)
        self._forward_head = type(model).forward_head

    def penultimate(self, fmap: torch.Tensor) -> torch.Tensor:
        return self._forward_head(self, fmap, pre_logits=True)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self._forward_head(self, fmap)


def build_head(head_cfg: Mapping[str, Any], in_features: int, num_classes: int) -> nn.Module:
    """A `gap_linear` or `pool_mlp` head from its config node (`timm` is built with the backbone)."""
    options = {k: v for k, v in head_cfg.items() if k != "name"}
    name = head_cfg.get("name")
    heads = {"gap_linear": GapLinearHead, "pool_mlp": PoolMlpHead}
    if name not in heads:
        raise ModelConfigError(f"head.name={name!r} is not a known head; choose one of {list(HEADS)}")
    try:
        return heads[name](in_features, num_classes, **options)
    except TypeError as err:
        raise ModelConfigError(f"head={name}: unexpected option in {sorted(options)} ({err})") from None
