"""Model-parameter randomisation test (Adebayo et al., 2018), cascading from the top layer down.

Layers are the modules that own parameters directly, in reverse registration order (the head first).
On a copy of the model, each layer in turn is re-initialised (cumulatively: everything above it stays
random) and the explanation recomputed; the score is the mean over images of the Spearman rank
correlation between the trained model's heatmap and the randomised one. A faithful explanation
drifts towards 0; one that stays high ignores the weights (an edge detector).
"""

import copy
from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from heatlens.explain._common import rng_devices, to_numpy
from heatlens.explain.errors import ExplainError

ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of modules owning parameters, top (last registered) first."""
    return [name for name, module in model.named_modules()
            if name and any(True for _ in module.parameters(recurse=False))][::-1]


def _reinitialise(module: nn.Module, generator: torch.Generator) -> None:
    if hasattr(module, "reset_parameters"):
        device = next(module.parameters()).device
        with torch.random.fork_rng(devices=rng_devices(device)):  # seeded, without touching the caller's RNG
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            module.reset_parameters()
        return
    with torch.no_grad():
        for param in module.parameters(recurse=False):
            param.copy_(torch.randn(param.shape, generator=generator).to(param) * 0.02)


def rank_correlation(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> np.ndarray:
    """(B,) Spearman correlation between paired heatmaps (B, h, w); NaN where one map is constant."""
    x, y = to_numpy(a).reshape(len(a), -1), to_numpy(b).reshape(len(b), -1)
    out = np.full(len(x), np.nan)
    for i, (u, v) in enumerate(zip(x, y)):
        if np.ptp(u) > 0 and np.ptp(v) > 0:
            out[i] = spearmanr(u, v).statistic
    return out


def cascading_randomisation(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                            explain_fn: ExplainFn, seed: int = 0, layers: list[str] | None = None,
                            absolute: bool = True, advance: Callable[[int], None] | None = None) -> dict[str, float]:
    """{layer name: mean Spearman correlation after randomising it and every layer above}, in cascade order.

    `explain_fn(model, images, targets) -> (B, h, w)` heatmaps. `layers` restricts which layers are
    scored (the cascade still randomises every layer above each one). With `absolute` the heatmaps'
    absolute values are ranked, as in Adebayo et al. `advance(1)` is called after each scored layer.
    """
    order = parameter_layers(model)
    wanted = order if layers is None else layers
    unknown = [name for name in wanted if name not in order]
    if unknown:
        raise ExplainError(f"layers {unknown} are not parameter layers of the model; choose from {order}")
    def prepare(heatmaps: torch.Tensor) -> np.ndarray:
        values = to_numpy(heatmaps)
        return np.abs(values) if absolute else values

    reference = prepare(explain_fn(model, images, targets))
    randomised = copy.deepcopy(model)
    modules = dict(randomised.named_modules())
    generator = torch.Generator().manual_seed(seed)
    scores: dict[str, float] = {}
    last = max(order.index(name) for name in wanted)
    for name in order[:last + 1]:
        _reinitialise(modules[name], generator)
        if name in wanted:
            heat = prepare(explain_fn(randomised, images, targets))
            scores[name] = float(np.nanmean(rank_correlation(reference, heat)))
            if advance is not None:
                advance(1)
    return scores
