"""Robustness: does the explanation stay put when the input barely changes (Yeh et al., 2019)?"""

import torch
from torch import nn

from heatlens.explain._common import model_device
from heatlens.explain.errors import ExplainError
from heatlens.explain.metrics._common import check_inputs, target_ids
from heatlens.explain.metrics.randomisation import Explainer


def max_sensitivity(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor, explainer: Explainer,
                    nr_samples: int = 10, radius: float = 0.2, seed: int = 0) -> torch.Tensor:
    """(B,) max over `nr_samples` noisy inputs of ||e(x + u) - e(x)||_F / ||e(x)||_F. Lower is better.

    u ~ U(-radius, radius) per input value (radius 0.2 in normalised units), drawn on the CPU from a
    generator seeded with `seed`: (C, H, W) per image, image after image, sample after sample. e(x)
    is `maps` (which must come from `explainer` at its native resolution), e(x + u) the explainer's map
    of the noisy image for the same target. Equals Quantus' `MaxSensitivity` (difference, Frobenius
    norms, no normalisation) with the same noise; Quantus' default is 200 samples, here 10 for speed.
    """
    check_inputs(images, maps)
    if nr_samples < 1 or radius <= 0:
        raise ExplainError(f"nr_samples must be >= 1 and radius > 0, got nr_samples={nr_samples}, radius={radius}")
    device = model_device(model)
    ids = target_ids(model, images.to(device), targets, device)
    generator = torch.Generator().manual_seed(seed)
    reference = maps.detach().float().cpu().flatten(1)
    worst = torch.full((len(images),), float("-inf"))
    for _ in range(nr_samples):
        noise = torch.stack([torch.rand(images.shape[1:], generator=generator) for _ in range(len(images))])
        noisy = images.detach() + (2 * noise.to(images.device, images.dtype) - 1) * radius
        other = explainer(model, noisy, ids).detach().float().cpu().flatten(1)
        if other.shape != reference.shape:
            raise ExplainError(f"explainer maps {tuple(other.shape)} differ in size from maps {tuple(reference.shape)}")
        worst = torch.maximum(worst, (other - reference).norm(dim=1) / reference.norm(dim=1))
    return worst
