"""A small model trained for real, for the audits that need a model that learnt something (or a shortcut)."""

import torch

from heatlens.models import build_model


def trained_simple_cnn(images: torch.Tensor, labels: torch.Tensor, epochs: int = 5) -> torch.nn.Module:
    """simple_cnn (width 8, 4 classes, 1 channel) trained with Adam (lr 3e-3) in seeded batches of 32; eval mode."""
    torch.manual_seed(0)
    net = build_model({"name": "simple_cnn", "width": 8}, {"name": "timm"}, num_classes=4, in_chans=1)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for rows in torch.randperm(len(images), generator=order).split(32):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(images[rows]), labels[rows]).backward()
            optimiser.step()
    return net.eval()
