"""Complexity of a relevance map: how concentrated it is (Chalasani et al., 2020; Bhatt et al., 2020).

Both metrics look only at the map's absolute values at its native resolution (no resizing: a 7x7 CAM
and a 224x224 attribution are scored on their own grids, so compare methods of one resolution, or
read the numbers as "of the map as the method emits it"). Each map is first divided by its maximum
absolute value, as Quantus does (normalise_by_max), which matters only through the small epsilons.
"""

import torch

from heatlens.explain.errors import ExplainError


def _flat_abs(maps: torch.Tensor) -> torch.Tensor:
    if not isinstance(maps, torch.Tensor) or maps.ndim != 3:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ExplainError(f"maps must be a (B, h, w) tensor, got {shape}")
    a = maps.detach().double().cpu().flatten(1).abs()
    peak = a.amax(dim=1, keepdim=True)
    return torch.where(peak > 0, a / peak.clamp_min(1e-300), a)


def sparseness(maps: torch.Tensor) -> torch.Tensor:
    """(B,) Gini index of |map| (Chalasani et al.): 0 = uniform, -> 1 = all relevance in one pixel. Higher is better.

    G = sum_k (2k - n - 1) a_(k) / (n sum_k a_(k)) over the n values sorted ascending, after adding
    1e-7 to each (Quantus' `Sparseness`, abs=True, normalise=True, to which it is equal).
    """
    a = torch.sort(_flat_abs(maps) + 1e-7, dim=1).values
    n = a.shape[1]
    k = torch.arange(1, n + 1, dtype=a.dtype)
    return (((2 * k - n - 1) * a).sum(dim=1) / (n * a.sum(dim=1))).float()


def entropy(maps: torch.Tensor) -> torch.Tensor:
    """(B,) Shannon entropy (nats) of p = |map| / sum |map| (Bhatt et al., "complexity"). Lower is better.

    -sum p log(p + 1e-12): 0 when one pixel holds all relevance, log(n) for a uniform map of n values.
    Equals Quantus' `Complexity` (abs=True, normalise=True). An all-zero map gives NaN.
    """
    a = _flat_abs(maps)
    p = a / a.sum(dim=1, keepdim=True)
    return (-(p * torch.log(p + 1e-12)).sum(dim=1)).float()
