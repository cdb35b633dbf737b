"""Faithfulness: does removing what the map calls relevant change the model's output the most?

MoRF / LeRF / random AOPC over regions stay in `heatlens.explain.perturbation`; this module adds
ROAD (Rong et al., 2022), insertion and deletion (Petsiuk et al., RISE, 2018) and faithfulness
correlation (Bhatt et al., 2020). Maps of any resolution are resized bilinearly to the image first.
Pixels are ranked over the (H, W) grid and a removed pixel is removed in every channel.
All perturbed images of a call are scored in chunks of `batch_size` (default per device).
"""

import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from heatlens.explain._common import default_batch_size, model_device, usable
from heatlens.explain.errors import ExplainError
from heatlens.explain.metrics._common import check_inputs, class_scores, target_ids, to_image_size
from heatlens.explain.metrics.imputation import noisy_linear_impute

ROAD_PERCENTAGES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
_IMPUTED_VALUES = 2**20  # per imputation solve: bounds its ~10 work tensors (measured: same speed from 2**17 up)


def _road(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor, most_relevant_first: bool,
          percentages, noise: float, seed: int, score: str, batch_size: int | None) -> torch.Tensor:
    check_inputs(images, maps, score)
    if not percentages or any(not 0 < p < 100 for p in percentages):
        raise ExplainError(f"percentages must be removal percentages strictly between 0 and 100, got {percentages}")
    device = model_device(model)
    batch_size = batch_size or default_batch_size(device)
    x = usable(images).detach().to(device)
    ids = target_ids(model, x, targets, device)
    relevance = to_image_size(maps.to(device), x.shape[-2:]).flatten(1).double()
    # The reference ranks 1 - map for LeRF (same order as -map, same float ties).
    ranked = relevance if most_relevant_first else 1 - relevance
    generator = torch.Generator().manual_seed(seed)
    base = class_scores(model, x, ids, score, batch_size)
    removed = torch.cat([ranked >= torch.quantile(ranked, 1 - p / 100, dim=1, keepdim=True) for p in percentages])
    removed = removed.view(-1, *x.shape[-2:])
    image = torch.arange(len(x), device=device).repeat(len(percentages))
    # Every percentage of a chunk of images is imputed in one solve (the systems converge in about as
    # many iterations), in percentage-major order so the noise draws follow that order.
    chunk = max(1, _IMPUTED_VALUES // x[0].numel())
    scores = []
    for start in range(0, len(image), chunk):
        which = image[start:start + chunk]
        imputed = noisy_linear_impute(x[which], removed[start:start + chunk], noise, generator)
        scores.append(class_scores(model, imputed, ids[which], score, batch_size))
    drops = torch.cat(scores).view(len(percentages), len(x)) - base
    return drops.mean(dim=0).float().cpu()


def road_morf(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor,
              percentages=ROAD_PERCENTAGES, noise: float = 0.01, seed: int = 0, score: str = "prob",
              batch_size: int | None = None) -> torch.Tensor:
    """(B,) ROAD, most relevant first: mean over `percentages` of f(x with the top p % imputed) - f(x). Lower is better.

    The top p % of pixels (map >= its (100 - p)th percentile, linear interpolation) are replaced by
    noisy linear imputation (`noise` = 0.01 absolute, seeded by `seed`), which removes information
    without the removal's shape leaking the class. `score` = "prob" (softmax) or "logit" of the target.
    Defaults p = 10, 20, ..., 90. Equals pytorch-grad-cam's `ROADMostRelevantFirstAverage` (its
    `percentile` q keeps the lowest q %, so q = 100 - p) with noise 0 (the reference draws its noise
    from the global RNG); the reference solves the imputation exactly, here to a relative residual of 1e-6.
    """
    return _road(model, images, targets, maps, True, percentages, noise, seed, score, batch_size)


def road_lerf(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor,
              percentages=ROAD_PERCENTAGES, noise: float = 0.01, seed: int = 0, score: str = "prob",
              batch_size: int | None = None) -> torch.Tensor:
    """(B,) ROAD, least relevant first: mean over `percentages` of f(x with the bottom p % imputed) - f(x).
    Higher (closer to 0) is better.

    As `road_morf` with the order reversed; equals pytorch-grad-cam's `ROADLeastRelevantFirstAverage`.
    """
    return _road(model, images, targets, maps, False, percentages, noise, seed, score, batch_size)


def _pixel_order(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H*W) rank of every pixel in most-relevant-first order; ties keep row-major order."""
    relevance = to_image_size(maps, size).flatten(1)
    order = torch.sort(relevance, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    return rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order).contiguous())


def _curves(model: nn.Module, start: torch.Tensor, end: torch.Tensor, targets, maps: torch.Tensor,
            steps: int, score: str, batch_size: int | None) -> torch.Tensor:
    """(B, steps+1) scores of images moving from `start` to `end` pixel by pixel in MoRF order."""
    check_inputs(start, maps, score)
    height, width = start.shape[-2:]
    num_pixels = height * width
    if not 1 <= steps <= num_pixels:
        raise ExplainError(f"steps must be between 1 and the number of pixels {num_pixels}, got {steps}")
    device = model_device(model)
    batch_size = batch_size or default_batch_size(device)
    start, end = usable(start).detach().to(device), usable(end).detach().to(device)
    ids = target_ids(model, start, targets, device)
    rank = _pixel_order(maps.to(device), (height, width)).view(len(start), height, width)
    per_step = -(-num_pixels // steps)
    image = torch.arange(len(start), device=device).repeat_interleave(steps + 1)
    step = torch.arange(steps + 1, device=device).repeat(len(start))
    out = []
    for chunk in range(0, len(image), batch_size):
        b, k = image[chunk:chunk + batch_size], step[chunk:chunk + batch_size]
        moved = (rank[b] < (k * per_step)[:, None, None])[:, None]
        out.append(class_scores(model, torch.where(moved, end[b], start[b]), ids[b], score, batch_size))
    return torch.cat(out).view(len(start), steps + 1).cpu()


def deletion_curves(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor, steps: int = 32,
                    baseline: float = 0.0, score: str = "prob", batch_size: int | None = None) -> torch.Tensor:
    """(B, steps+1) score after deleting the ceil(H*W/steps)*k most relevant pixels (set to `baseline`), k = 0..steps."""
    check_inputs(images, maps, score)
    return _curves(model, images, torch.full_like(images, baseline), targets, maps, steps, score, batch_size)


def insertion_curves(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor, steps: int = 32,
                     blur_kernel: int = 11, blur_sigma: float = 5.0, score: str = "prob",
                     batch_size: int | None = None) -> torch.Tensor:
    """(B, steps+1) score after inserting the ceil(H*W/steps)*k most relevant pixels of the image into
    its Gaussian blur (`blur_kernel` px, `blur_sigma`, reflect padding, as RISE), k = 0..steps."""
    check_inputs(images, maps, score)
    blurred = gaussian_blur(usable(images).detach(), [blur_kernel, blur_kernel], [blur_sigma, blur_sigma])
    return _curves(model, blurred, images, targets, maps, steps, score, batch_size)


def curve_auc(curves: torch.Tensor) -> torch.Tensor:
    """(B,) trapezoidal area under (B, K+1) curves over the removed fraction 0..1 (RISE's normalisation)."""
    return ((curves[:, 1:] + curves[:, :-1]) / 2).mean(dim=1)


def deletion_auc(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor, steps: int = 32,
                 baseline: float = 0.0, score: str = "prob", batch_size: int | None = None) -> torch.Tensor:
    """(B,) area under the deletion curve (Petsiuk et al.): the faster the score falls, the better. Lower is better.

    Defaults: 32 steps, deleted pixels set to 0 (the dataset mean after normalisation), softmax
    probability. Quantus' `PixelFlipping` gives the same curve without step 0 (features_in_step =
    H*W/steps, perturb_baseline=0, grey images) and integrates it with dx=1 instead of over [0, 1].
    """
    return curve_auc(deletion_curves(model, images, targets, maps, steps, baseline, score, batch_size))


def insertion_auc(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor, steps: int = 32,
                  blur_kernel: int = 11, blur_sigma: float = 5.0, score: str = "prob",
                  batch_size: int | None = None) -> torch.Tensor:
    """(B,) area under the insertion curve (Petsiuk et al.): the faster the score rises, the better. Higher is better.

    Defaults: 32 steps from a Gaussian blur (11 px, sigma 5) of the image. Quantus has no insertion
    metric; its `PixelFlipping` run on the blurred image with the original's pixels as the
    replacement values gives the same curve (without step 0).
    """
    return curve_auc(insertion_curves(model, images, targets, maps, steps, blur_kernel, blur_sigma, score,
                                      batch_size))


def faithfulness_correlation(model: nn.Module, images: torch.Tensor, targets, maps: torch.Tensor,
                             nr_runs: int = 100, subset_size: int = 224, baseline: float = 0.0, seed: int = 0,
                             score: str = "logit", subsets: torch.Tensor | None = None,
                             batch_size: int | None = None) -> torch.Tensor:
    """(B,) Pearson correlation, over `nr_runs` random pixel subsets, between the relevance summed over
    the subset and the drop f(x) - f(x with the subset set to `baseline`) (Bhatt et al.). Higher is better.

    Defaults as Quantus' `FaithfulnessCorrelation`: 100 runs of 224 pixels, baseline 0, logits. Each
    image's subsets are the `subset_size` largest of `torch.rand(nr_runs, H*W)` from a generator seeded
    with `seed`, image after image; `subsets` (B, nr_runs, subset_size) pixel indices overrides them
    (the reference draws from numpy's global RNG). NaN where the drops or sums are constant.
    """
    check_inputs(images, maps, score)
    height, width = images.shape[-2:]
    num_pixels = height * width
    if not 1 <= subset_size < num_pixels or nr_runs < 2:
        raise ExplainError(f"subset_size must be in [1, {num_pixels}) and nr_runs >= 2, got "
                           f"subset_size={subset_size}, nr_runs={nr_runs}")
    device = model_device(model)
    batch_size = batch_size or default_batch_size(device)
    x = usable(images).detach().to(device)
    ids = target_ids(model, x, targets, device)
    if subsets is None:
        generator = torch.Generator().manual_seed(seed)
        subsets = torch.stack([torch.rand(nr_runs, num_pixels, generator=generator).topk(subset_size).indices
                               for _ in range(len(x))])
    subsets = subsets.to(device)
    relevance = to_image_size(maps.to(device), (height, width)).flatten(1)
    sums = torch.gather(relevance[:, None].expand(-1, subsets.shape[1], -1), 2, subsets).sum(dim=2)
    base = class_scores(model, x, ids, score, batch_size)
    image = torch.arange(len(x), device=device).repeat_interleave(subsets.shape[1])
    flat_subsets = subsets.flatten(0, 1)
    drops = []
    for chunk in range(0, len(image), batch_size):
        b = image[chunk:chunk + batch_size]
        mask = torch.zeros(len(b), num_pixels, dtype=torch.bool, device=device)
        mask.scatter_(1, flat_subsets[chunk:chunk + batch_size], True)
        perturbed = torch.where(mask.view(len(b), 1, height, width), torch.full_like(x[b], baseline), x[b])
        drops.append(base[b] - class_scores(model, perturbed, ids[b], score, batch_size))
    drops = torch.cat(drops).view(len(x), -1).double()
    return _pearson(sums.double(), drops).float().cpu()


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denominator = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(denominator > 0, (a * b).sum(dim=1) / denominator.clamp_min(1e-300),
                       torch.full_like(denominator, float("nan")))
