"""Classification heads: feature map (B, K, h, w) -> logits (B, C); `penultimate` gives the embedding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


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
    """The backbone's own timm head: `forward_head` of the timm model (pooling, pre-logits, classifier).

    The head's modules stay in the timm model, so `net.backbone` keeps timm's state-dict layout and
    timm's code runs on timm's object; this module only routes the call (the map turned back into what
    `forward_head` takes by the model's TimmLayout) and owns no parameters.
    """

    def __init__(self, layout: nn.Module) -> None:
        super().__init__()
        # Held in a list, not as a submodule: registering it would list the timm model's weights twice.
        self._layout = [layout]

    def penultimate(self, fmap: torch.Tensor) -> torch.Tensor:
        layout = self._layout[0]
        return layout.model.forward_head(layout.head_input(fmap), pre_logits=True)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        layout = self._layout[0]
        return layout.model.forward_head(layout.head_input(fmap))


OWN_HEADS = {"gap_linear": GapLinearHead, "pool_mlp": PoolMlpHead}


def build_head(head_cfg: Mapping[str, Any], in_features: int, num_classes: int) -> nn.Module:
    """A `gap_linear` or `pool_mlp` head from its (checked) config node."""
    options = {k: v for k, v in head_cfg.items() if k != "name"}
    return OWN_HEADS[head_cfg["name"]](in_features, num_classes, **options)
