"""Gradient attributions by name: captum (vanilla gradient, SmoothGrad, Integrated Gradients, batched)
and PAIR `saliency` (Guided IG, Blur IG, XRAI, fast XRAI), for 1- and 3-channel images.

`attribute(method, model, images, targets)` returns (B, C, H, W) float32 for pixel attributions and
(B, H, W) for the XRAI region maps. Gradients are taken of the target class logit, in eval mode, and
never populate parameter `.grad`; calls work under torch.inference_mode() callers.
"""

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from heatlens.explain._common import (
    as_targets,
    check_images,
    eval_mode,
    gradients_enabled,
    model_device,
    rng_devices,
    usable,
)
from heatlens.explain.errors import ExplainError

CAPTUM_METHODS = ("saliency", "smoothgrad", "integrated_gradients")
PAIR_METHODS = ("guided_ig", "blur_ig", "xrai", "fast_xrai")
METHODS = CAPTUM_METHODS + PAIR_METHODS
OPTIONS = {
    "saliency": {"abs"},
    "smoothgrad": {"nt_samples", "noise_level", "batch_size", "abs"},
    "integrated_gradients": {"n_steps", "baseline", "internal_batch_size", "batch_size", "integration"},
    "guided_ig": {"steps", "fraction", "max_dist"},
    "blur_ig": {"steps", "max_sigma", "batch_size"},
    "xrai": {"steps", "batch_size"},
    "fast_xrai": {"steps", "batch_size"},
}
FAST_XRAI_KEEP = 0.3  # fast XRAI keeps the most salient 30 % of the image, as in PAIR's examples


def attribute(method: str, model: nn.Module, images: torch.Tensor, targets: torch.Tensor | list[int] | int,
              seed: int = 0, **kwargs) -> torch.Tensor:
    """Attributions of `targets` for `images` with the named method; extra kwargs go to the method.

    saliency: abs. smoothgrad: nt_samples=25, noise_level=0.15 (of the batch's value range), batch_size.
    integrated_gradients: n_steps=64, baseline=0.0, internal_batch_size. guided_ig: steps=64,
    fraction=0.25, max_dist=0.02. blur_ig: steps=64, max_sigma=50, batch_size. xrai / fast_xrai:
    steps=64 (IG steps per baseline), batch_size.
    """
    if method not in METHODS:
        raise ExplainError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    unknown = sorted(set(kwargs) - OPTIONS[method])
    if unknown:
        raise ExplainError(f"{method} does not take {', '.join(unknown)}; its options: "
                           f"{', '.join(sorted(OPTIONS[method]))}")
    check_images(images)
    device = model_device(model)
    with eval_mode(model), gradients_enabled(), torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(seed)
        x = usable(images).detach().float().to(device)
        with torch.no_grad():
            num_classes = model(x[:1]).shape[-1]
        target_ids = as_targets(targets, len(x), num_classes, device)
        if method in CAPTUM_METHODS:
            result = _captum(method, model, x, target_ids, **kwargs)
        else:
            result = _pair(method, model, x, target_ids, **kwargs)
    return result.detach().float().cpu()


def _captum(method: str, model: nn.Module, x: torch.Tensor, targets: torch.Tensor, **kw) -> torch.Tensor:
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    batch_size = kw.pop("batch_size", kw.pop("internal_batch_size", 64))
    x = x.requires_grad_(True)  # captum warns and flips it itself otherwise
    if method == "saliency":
        return Saliency(model).attribute(x, target=targets, abs=kw.pop("abs", True))
    if method == "smoothgrad":
        noise = kw.pop("noise_level", 0.15) * float(x.detach().max() - x.detach().min())
        return NoiseTunnel(Saliency(model)).attribute(
            x, nt_type="smoothgrad", nt_samples=kw.pop("nt_samples", 25), stdevs=noise,
            nt_samples_batch_size=batch_size, target=targets, abs=kw.pop("abs", True))
    baseline = kw.pop("baseline", 0.0)
    return IntegratedGradients(model).attribute(
        x, baselines=baseline, target=targets, n_steps=kw.pop("n_steps", 64),
        internal_batch_size=batch_size, method=kw.pop("integration", "gausslegendre"))


def _gradient_function(model: nn.Module, target: int, device: torch.device) -> Callable:
    """PAIR's call_model_function: batch (N, H, W, C) numpy -> d logit_target / d input, same layout."""
    from saliency.core import INPUT_OUTPUT_GRADIENTS

    def call(x_batch, call_model_args=None, expected_keys=None):
        x = torch.from_numpy(np.asarray(x_batch, dtype=np.float32)).permute(0, 3, 1, 2).to(device)
        x.requires_grad_(True)
        score = model(x)[:, target].sum()
        grads = torch.autograd.grad(score, x)[0]
        return {INPUT_OUTPUT_GRADIENTS: grads.permute(0, 2, 3, 1).float().cpu().numpy()}

    return call


@contextmanager
def _numpy2_guided_ig() -> Iterator[None]:
    """saliency 0.2.1 (latest) calls np.quantile(interpolation=...), removed in numpy 2: give its module a
    numpy whose quantile maps the old keyword to `method`, for the duration of the call only."""
    from saliency.core import guided_ig

    def quantile(a, q, interpolation="linear", **kw):
        return np.quantile(a, q, method=interpolation, **kw)

    shim = types.SimpleNamespace(**{name: getattr(np, name) for name in dir(np) if not name.startswith("__")})
    shim.quantile = quantile
    original, guided_ig.np = guided_ig.np, shim
    try:
        yield
    finally:
        guided_ig.np = original


def _pair(method: str, model: nn.Module, x: torch.Tensor, targets: torch.Tensor, **kw) -> torch.Tensor:
    import saliency.core as pair

    steps = kw.pop("steps", 64)
    batch_size = kw.pop("batch_size", 32)
    device = x.device
    results = []
    for image, target in zip(x, targets.tolist()):
        hwc = image.permute(1, 2, 0).cpu().numpy().astype(np.float64)
        call = _gradient_function(model, target, device)
        if method == "guided_ig":
            with _numpy2_guided_ig():
                mask = pair.GuidedIG().GetMask(hwc, call, x_baseline=np.zeros_like(hwc), x_steps=steps,
                                               fraction=kw.get("fraction", 0.25), max_dist=kw.get("max_dist", 0.02))
        elif method == "blur_ig":
            mask = pair.BlurIG().GetMask(hwc, call, max_sigma=kw.get("max_sigma", 50), steps=steps,
                                         batch_size=batch_size)
        else:
            mask = _xrai(hwc, call, steps, batch_size, fast=method == "fast_xrai").attribution_mask
        results.append(torch.from_numpy(np.asarray(mask, dtype=np.float32)))
    out = torch.stack(results)
    return out.permute(0, 3, 1, 2) if out.ndim == 4 else out


def _xrai(hwc: np.ndarray, call: Callable, steps: int, batch_size: int, fast: bool, segments: bool = False):
    import saliency.core as pair

    params = pair.XRAIParameters(steps=steps, algorithm="fast" if fast else "full",
                                 return_xrai_segments=segments)
    out = pair.XRAI().GetMaskWithDetails(hwc, call, batch_size=batch_size, extra_parameters=params)
    if fast:
        threshold = np.percentile(out.attribution_mask, 100 * (1 - FAST_XRAI_KEEP))
        out.attribution_mask = np.where(out.attribution_mask >= threshold, out.attribution_mask, 0.0)
    return out


def xrai_regions(model: nn.Module, images: torch.Tensor, targets: torch.Tensor | list[int] | int,
                 steps: int = 64, batch_size: int = 32) -> torch.Tensor:
    """(B, H, W) int64 XRAI region ranks: 1 is the most important region, every pixel gets a rank."""
    check_images(images)
    device = model_device(model)
    with eval_mode(model), gradients_enabled():
        x = usable(images).detach().float().to(device)
        with torch.no_grad():
            num_classes = model(x[:1]).shape[-1]
        target_ids = as_targets(targets, len(x), num_classes, device).tolist()
        ranks = [_xrai(image.permute(1, 2, 0).cpu().numpy().astype(np.float64),
                       _gradient_function(model, t, device), steps, batch_size, fast=False, segments=True).segments
                 for image, t in zip(x, target_ids)]
    return torch.from_numpy(np.stack(ranks).astype(np.int64))


def to_heatmap(attributions: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W) by summing absolute values over channels; (B, H, W) passes through."""
    if attributions.ndim == 3:
        return attributions
    if attributions.ndim != 4:
        raise ExplainError(f"attributions must be (B, C, H, W) or (B, H, W), got {tuple(attributions.shape)}")
    return attributions.abs().sum(dim=1)
