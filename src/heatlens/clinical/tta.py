"""Test-time augmentation: the mean of the probabilities (softmax, or sigmoid per finding) over seeded views of each image."""

from __future__ import annotations

from collections.abc import Callable

import torch

# A "light" view shifts the image by up to this fraction of its side (zero padding = the dataset mean
# after normalisation).
MAX_SHIFT = 1 / 16


def _shifted(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def tta_views(images: torch.Tensor, mode: str, seed: int) -> list[torch.Tensor]:
    """`flips`: the image and its left-right mirror; `light`: those two, each also shifted by a seeded
    offset of up to MAX_SHIFT of the side. `none`: the image alone."""
    if mode == "none":
        return [images]
    views = [images, torch.flip(images, dims=[-1])]
    if mode == "flips":
        return views
    if mode == "light":
        limit = max(int(images.shape[-1] * MAX_SHIFT), 1)
        generator = torch.Generator().manual_seed(seed)
        offsets = torch.randint(-limit, limit + 1, (len(views), 2), generator=generator).tolist()
        return views + [_shifted(view, dy, dx) for view, (dy, dx) in zip(views, offsets)]
    raise ValueError(f"tta={mode!r}: expected none, flips or light")


def tta_probabilities(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, mode: str,
                      seed: int, probabilities: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """(B, C) mean over views of `probabilities(forward(view))` (default softmax; a multi-label model
    passes its sigmoid), in float32."""
    views = tta_views(images, mode, seed)
    to_probs = probabilities or (lambda logits: logits.float().softmax(-1))
    return torch.stack([to_probs(forward(view)).float() for view in views]).mean(0)
