"""Region perturbation curves (MoRF / LeRF / random) and AOPC (Samek et al., 2017).

Region grid: squares of `region_size` px from the top-left corner; when the size does not divide the
image the grid has ceil(H / size) x ceil(W / size) regions and the last row / column are narrower.
A region's relevance is the mean of the heatmap (bilinearly resized to the image) over its pixels.
Ties keep grid order (row-major).

Perturbation is cumulative: step k replaces the k first regions of the order. Each pixel's
replacement value is drawn once per image, so the curve is x(0) = x, x(k) = where(rank < k, P, x):
  gaussian_noise  P = x + N(0, sigma)                   (sigma = 0.1 by default)
  uniform_replace P ~ U(min x, max x) per image          (Samek et al.)
  mean            P = per-image, per-channel mean
  blur            P = Gaussian blur of x (blur_sigma px)
  zero            P = 0
Seed protocol: one CPU torch.Generator seeded with `seed` first draws, image after image in batch
order, `torch.randn((C, H, W))` (gaussian_noise) or `torch.rand((C, H, W))` (uniform_replace); then,
for order="random", `torch.randperm(L)` image after image. The same call gives the same numbers on
any device and with any batch size; images excluded by `correct_only` still consume their draws.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from heatlens.explain._common import (
    as_targets,
    check_images,
    default_batch_size,
    eval_mode,
    model_device,
    usable,
)
from heatlens.explain.errors import ExplainError

ORDERS = ("morf", "lerf", "random")
PERTURBATIONS = ("gaussian_noise", "uniform_replace", "mean", "blur", "zero")
SCORES = ("prob", "logit", "sigmoid")  # softmax probability, raw logit, sigmoid (multi-label findings)


def region_grid(height: int, width: int, region_size: int) -> torch.Tensor:
    """(H, W) int64 region id of every pixel, row-major over a ceil-sized grid."""
    if region_size < 1:
        raise ExplainError(f"region_size must be a positive number of pixels, got {region_size}")
    cols = math.ceil(width / region_size)
    rows_idx = torch.arange(height) // region_size
    cols_idx = torch.arange(width) // region_size
    return rows_idx[:, None] * cols + cols_idx[None, :]


def region_relevance(heatmaps: torch.Tensor, size: tuple[int, int], region_size: int) -> torch.Tensor:
    """(B, L) mean heatmap value per region after bilinear resizing to the image size."""
    h = heatmaps.float()
    if tuple(h.shape[-2:]) != tuple(size):
        h = F.interpolate(h[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    grid = region_grid(*size, region_size).to(h.device).flatten()
    num_regions = int(grid.max()) + 1
    sums = torch.zeros(h.shape[0], num_regions, device=h.device).index_add_(1, grid, h.flatten(1))
    counts = torch.bincount(grid, minlength=num_regions).float()
    return sums / counts


def _replacement(images: torch.Tensor, perturbation: str, sigma: float, blur_sigma: float,
                 generator: torch.Generator) -> torch.Tensor:
    """P: the value every pixel takes once perturbed (B, C, H, W)."""
    shape = images.shape[1:]
    if perturbation == "gaussian_noise":
        noise = torch.stack([torch.randn(shape, generator=generator) for _ in range(len(images))])
        return images + sigma * noise.to(images.device, images.dtype)
    if perturbation == "uniform_replace":
        u = torch.stack([torch.rand(shape, generator=generator) for _ in range(len(images))])
        low = images.amin(dim=(1, 2, 3), keepdim=True)
        high = images.amax(dim=(1, 2, 3), keepdim=True)
        return low + (high - low) * u.to(images.device, images.dtype)
    if perturbation == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
    if perturbation == "blur":
        radius = max(1, math.ceil(3 * blur_sigma))
        taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
        kernel = torch.exp(-0.5 * (taps / blur_sigma) ** 2)
        kernel = kernel / kernel.sum()
        c = images.shape[1]
        x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
        x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return torch.zeros_like(images)


def _check(order: str, perturbation: str, score: str, images: torch.Tensor, heatmaps: torch.Tensor | None,
           region_size: int, sigma: float, blur_sigma: float) -> None:
    for name, value, allowed in (("order", order, ORDERS), ("perturbation", perturbation, PERTURBATIONS),
                                 ("score", score, SCORES)):
        if value not in allowed:
            raise ExplainError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    check_images(images)
    if heatmaps is None and order != "random":
        raise ExplainError(f"order={order!r} needs heatmaps; only order='random' works without")
    if heatmaps is not None and (heatmaps.ndim != 3 or heatmaps.shape[0] != images.shape[0]):
        raise ExplainError(f"heatmaps must be (B, h, w) with B={images.shape[0]}, got {tuple(heatmaps.shape)}")
    if region_size < 1 or region_size > max(images.shape[-2:]):
        raise ExplainError(f"region_size must be between 1 and the image size {tuple(images.shape[-2:])}, "
                           f"got {region_size}")
    if sigma < 0 or blur_sigma <= 0:
        raise ExplainError(f"sigma must be >= 0 and blur_sigma > 0, got sigma={sigma}, blur_sigma={blur_sigma}")


def perturbation_curves(
    model: nn.Module,
    images: torch.Tensor,
    heatmaps: torch.Tensor | None,
    targets: torch.Tensor | list[int] | int,
    region_size: int = 8,
    order: str = "morf",
    perturbation: str = "gaussian_noise",
    sigma: float = 0.1,
    seed: int = 0,
    score: str = "prob",
    batch_size: int | None = None,
    steps: int | None = None,
    blur_sigma: float = 5.0,
    labels: torch.Tensor | None = None,
    correct_only: bool = False,
) -> torch.Tensor:
    """Score of the explained class along the perturbation order: (B, L+1) float32, column 0 unperturbed.

    `steps` caps L (default: every region). With `correct_only`, images whose prediction differs from
    `labels` (default: `targets`) get a NaN row and are not perturbed; with score="sigmoid" (a multi-label
    finding, its own sigmoid) "correct" means the target's probability exceeds 0.5 (`labels` unused).
    All (L+1)*B images are scored in chunks of `batch_size` (default per device), in eval mode, channels_last.
    """
    _check(order, perturbation, score, images, heatmaps, region_size, sigma, blur_sigma)
    device = model_device(model)
    batch_size = batch_size or default_batch_size(device)
    images = usable(images).detach().to(device)
    height, width = images.shape[-2:]
    generator = torch.Generator().manual_seed(seed)
    replaced = _replacement(images, perturbation, sigma, blur_sigma, generator)

    grid = region_grid(height, width, region_size).to(device)
    num_regions = int(grid.max()) + 1
    if order == "random":
        ranking = torch.stack([torch.randperm(num_regions, generator=generator) for _ in images]).to(device)
    else:
        relevance = region_relevance(heatmaps.detach().to(device), (height, width), region_size)
        ranking = torch.sort(relevance, dim=1, descending=order == "morf", stable=True).indices
    # rank_of_region[b, r] = position of region r in image b's order; pixel perturbed at step k if < k.
    rank_of_region = torch.empty_like(ranking).scatter_(1, ranking, torch.arange(num_regions, device=device)
                                                        .expand_as(ranking).contiguous())
    pixel_rank = rank_of_region[:, grid]  # (B, H, W)
    num_steps = num_regions if steps is None else min(steps, num_regions)

    curves = torch.full((len(images), num_steps + 1), float("nan"))  # outside inference mode: written below
    with eval_mode(model), torch.inference_mode():
        first = _scores(model, images, batch_size)
        num_classes = first.shape[1]
        target_ids = as_targets(targets, len(images), num_classes, device)
        keep = torch.ones(len(images), dtype=torch.bool, device=device)
        if correct_only and score == "sigmoid":
            keep = first.gather(1, target_ids[:, None])[:, 0] > 0
        elif correct_only:
            truth = target_ids if labels is None else as_targets(labels, len(images), num_classes, device)
            keep = first.argmax(dim=1) == truth
        kept = keep.nonzero().flatten()
        if not len(kept):
            return curves
        pairs_image = kept.repeat_interleave(num_steps)
        pairs_step = torch.arange(1, num_steps + 1, device=device).repeat(len(kept))
        perturbed_scores = []
        for start in range(0, len(pairs_image), batch_size):
            b = pairs_image[start:start + batch_size]
            k = pairs_step[start:start + batch_size]
            mask = (pixel_rank[b] < k[:, None, None])[:, None]
            perturbed_scores.append(_scores(model, torch.where(mask, replaced[b], images[b]), batch_size))
        logits = torch.cat([first[kept], *perturbed_scores]).float()
    chosen = {"prob": logits.softmax(dim=1), "sigmoid": logits.sigmoid()}.get(score, logits)
    kept_targets = target_ids[kept]
    start = chosen[:len(kept)].gather(1, kept_targets[:, None])
    rest = chosen[len(kept):].view(len(kept), num_steps, num_classes)
    along = rest.gather(2, kept_targets[:, None, None].expand(-1, num_steps, 1))[..., 0]
    curves[kept.cpu()] = torch.cat([start, along], dim=1).cpu()
    return curves


def _scores(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logits for x in chunks; channels_last is measurably faster for conv nets on CPU and GPU."""
    out = [model(x[i:i + batch_size].contiguous(memory_format=torch.channels_last))
           for i in range(0, len(x), batch_size)]
    return torch.cat(out)


def aopc_per_image(curves: torch.Tensor) -> torch.Tensor:
    """sum_{k=1..L} (f(x0) - f(xk)) / (L+1) per row; NaN rows (excluded images) stay NaN."""
    if curves.ndim != 2 or curves.shape[1] < 2:
        raise ExplainError(f"curves must be (B, L+1) with L >= 1, got shape {tuple(curves.shape)}")
    return (curves[:, :1] - curves[:, 1:]).sum(dim=1) / curves.shape[1]


def aopc(curves: torch.Tensor) -> float:
    """Mean AOPC over the images that were scored (NaN rows ignored; NaN if none)."""
    per_image = aopc_per_image(curves)
    valid = per_image[~torch.isnan(per_image)]
    return float(valid.mean()) if len(valid) else float("nan")
