"""The small baseline: four conv blocks, a max-pool between consecutive blocks."""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SimpleCNN(nn.Module):
    """Feature extractor: widths w, 2w, 4w, 8w; output stride 8 keeps Grad-CAM maps fine-grained."""

    def __init__(self, in_chans: int = 1, width: int = 16) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(4)]
        self.blocks = nn.ModuleList(
            _conv_block(c_in, c_out) for c_in, c_out in zip([in_chans, *widths[:-1]], widths)
        )
        self.pool = nn.MaxPool2d(2)
        self.num_features = widths[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> (B, 8w, H/8, W/8): the output of the last conv block."""
        for i, block in enumerate(self.blocks):
            if i:
                x = self.pool(x)
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)
