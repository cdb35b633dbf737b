"""Shared pieces of the metrics: input checks, map resizing, class scores of image batches."""

import torch
import torch.nn.functional as F
from torch import nn

from heatlens.explain._common import as_targets, check_images, eval_mode
from heatlens.explain.errors import ExplainError

SCORES = ("prob", "logit", "sigmoid")  # softmax probability, raw logit, sigmoid (multi-label findings)


def check_inputs(images: torch.Tensor, maps: torch.Tensor | None, score: str | None = None) -> None:
    check_images(images)
    if maps is not None and (not isinstance(maps, torch.Tensor) or maps.ndim != 3 or len(maps) != len(images)):
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ExplainError(f"maps must be (B, h, w) with B={len(images)} images, got {shape}")
    if score is not None and score not in SCORES:
        raise ExplainError(f"score must be one of {', '.join(SCORES)}, got {score!r}")


def to_image_size(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) float32 maps, bilinearly resized (align_corners=False) when not already at `size`."""
    m = maps.detach().float()
    if tuple(m.shape[-2:]) != tuple(size):
        m = F.interpolate(m[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return m


def class_scores(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, score: str,
                 batch_size: int) -> torch.Tensor:
    """(N,) float32 softmax probability, sigmoid or logit of `targets` for images (N, C, H, W), in eval
    mode, in chunks."""
    out = []
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].contiguous(memory_format=torch.channels_last)
            logits = model(x).float()
            chosen = {"prob": logits.softmax(dim=1), "sigmoid": logits.sigmoid()}.get(score, logits)
            out.append(chosen.gather(1, targets[start:start + batch_size, None])[:, 0])
    return torch.cat(out)


def target_ids(model: nn.Module, images: torch.Tensor, targets, device: torch.device) -> torch.Tensor:
    with eval_mode(model), torch.inference_mode():
        num_classes = model(images[:1]).shape[1]
    return as_targets(targets, len(images), num_classes, device)
