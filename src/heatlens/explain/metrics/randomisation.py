"""Randomisation: does the explanation depend on the model and on the explained class?

The cascading model-parameter randomisation test is `heatlens.explain.sanity`; this module adds the
random-logit test (Sixt et al., 2020) and efficient MPRT (eMPRT, Hedström et al., 2024), which scores
the change of the explanation's complexity after randomising the whole model instead of a similarity
per layer (the flaw of plain MPRT: similarity measures and layer order drive its verdict).
"""

import copy
from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import entropy as scipy_entropy
from torch import nn

from heatlens.explain._common import model_device, rng_devices, to_numpy
from heatlens.explain.errors import ExplainError
from heatlens.explain.metrics._common import check_inputs, target_ids
from heatlens.explain.sanity import rank_correlation

Explainer = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def random_logit(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor, explainer: Explainer,
                 seed: int = 0, off_targets: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) Spearman correlation between the map for the target class and the map for another class. Lower is better.

    The other class is drawn uniformly among the C - 1 non-target classes: index i = randint(0, C - 1)
    from a generator seeded with `seed` into the other classes in increasing order (Quantus' rule, which
    uses numpy's global RNG); `off_targets` (B,) overrides it. An explanation that does not depend on
    the class (an edge detector, Eigen-CAM) scores 1. Quantus' `RandomLogit` defaults to SSIM; with
    similarity_func=correlation_spearman it equals this. NaN where a map is constant.
    """
    check_inputs(images, maps)
    device = model_device(model)
    ids = target_ids(model, images.to(device), targets, device).cpu()
    with torch.inference_mode():
        num_classes = model(images[:1].to(device)).shape[1]
    if num_classes < 2:
        raise ExplainError(f"random_logit needs a model with at least 2 classes, got {num_classes}")
    if off_targets is None:
        generator = torch.Generator().manual_seed(seed)
        index = torch.randint(0, num_classes - 1, (len(images),), generator=generator)
        off_targets = index + (index >= ids).long()
    off_targets = torch.as_tensor(off_targets).long().cpu()
    if bool((off_targets == ids).any()):
        raise ExplainError("off_targets must differ from targets for every image")
    other = explainer(model, images, off_targets.to(device))
    return torch.from_numpy(rank_correlation(maps, other)).float()


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of `model` with every module that has `reset_parameters` re-initialised (batch-norm
    statistics included), each after seeding torch with seed + 1, as Quantus' model randomisation;
    the caller's RNG state is restored."""
    random = copy.deepcopy(model)
    device = model_device(model)
    with torch.random.fork_rng(devices=rng_devices(device)):
        for _, module in random.named_modules():
            if hasattr(module, "reset_parameters"):
                torch.manual_seed(seed + 1)
                module.reset_parameters()
    return random


def discrete_entropy(maps: torch.Tensor, n_bins: int = 100) -> np.ndarray:
    """(B,) entropy (nats) of the histogram of each map's values in `n_bins` equal bins (Quantus' discrete_entropy)."""
    return np.array([scipy_entropy(np.histogram(m, bins=n_bins)[0]) for m in to_numpy(maps).reshape(len(maps), -1)])


def emprt(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor, explainer: Explainer,
          seed: int = 0, n_bins: int = 100) -> torch.Tensor:
    """(B,) eMPRT: relative rise of the map's discrete entropy once every layer is randomised. Higher is better.

    (H(e_random) - H(e)) / H(e), with H the entropy of a `n_bins` histogram of the map's values, e the
    given `maps` and e_random the explainer's maps for the same targets on `randomised_copy(model, seed)`.
    A map that ignores the weights keeps its entropy (score ~0); a faithful one turns to noise (> 0).
    Equals Quantus' `EfficientMPRT` (layer_order bottom_up, skip_layers, complexity discrete_entropy
    with n_bins fixed; Quantus picks n_bins per data set by default, here a fixed default of 100).
    """
    check_inputs(images, maps)
    device = model_device(model)
    ids = target_ids(model, images.to(device), targets, device)
    random = randomised_copy(model, seed)
    before = discrete_entropy(maps, n_bins)
    after = discrete_entropy(explainer(random, images, ids), n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        return torch.from_numpy((after - before) / before).float()
