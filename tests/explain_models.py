"""Tiny models honouring the model contract (features / head / embed / feature_layer).

Defined here on purpose: the explain library is tested without heatlens.models.
"""

import timm
import torch
from torch import nn


class TinyConvNet(nn.Module):
    """`blocks` conv blocks (conv, batch norm, ReLU, 2x2 max-pool) -> feature map (B, width, H/2^blocks,
    W/2^blocks) -> global average pool -> linear head."""

    def __init__(self, in_chans: int = 1, num_classes: int = 3, width: int = 8, blocks: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        for block in range(blocks):
            layers += [nn.Conv2d(in_chans if block == 0 else width, width, 3, padding=1), nn.BatchNorm2d(width),
                       nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)
        self.feature_layer = self.body

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.classifier(fmap.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class TimmNet(nn.Module):
    """A timm backbone sliced into features (forward_features) and head (forward_head)."""

    def __init__(self, name: str = "resnet18", in_chans: int = 3, num_classes: int = 3):
        super().__init__()
        self.backbone = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)
        self.feature_layer = self.backbone.layer4

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(fmap)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(self.features(x), pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics so eval-mode batch norm is not the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()
