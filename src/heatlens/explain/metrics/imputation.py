"""Noisy linear imputation of ROAD (Rong et al., ICML 2022), batched on the model's device.

Each removed pixel takes the weighted mean of its 8 neighbours (weights 1/6 for the 4 direct ones,
1/12 for the diagonals; out-of-image neighbours drop out), known neighbours fixed: a sparse linear
system per image and channel. The reference (`pytorch_grad_cam.metrics.road.NoisyLinearImputer`)
solves it with scipy's direct sparse solver, one image at a time on the CPU; here the same system is
solved for the whole batch at once with Jacobi-preconditioned conjugate gradients (the matrix is
symmetric positive definite on the removed pixels), a few 3x3 convolutions per iteration. Then `noise` * N(0, 1) is added to every imputed value.
"""

import torch
import torch.nn.functional as F

_WEIGHTS_LIST = [[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]]


def _neighbours(x: torch.Tensor) -> torch.Tensor:
    """Weighted sum of the 8 neighbours of every pixel of x (N, 1, H, W), zero outside the image.
    Shifted adds: measured ~1.5x faster than a one-channel 3x3 conv2d on the CPU."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    out = torch.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            weight = _WEIGHTS_LIST[dy][dx]
            if weight:
                out.add_(padded[..., dy:dy + h, dx:dx + w], alpha=weight)
    return out


def linear_impute(images: torch.Tensor, removed: torch.Tensor, tol: float = 1e-6, max_iter: int = 5000) -> torch.Tensor:
    """images (N, C, H, W) with pixels where `removed` (N, H, W) is True replaced by the linear infill.

    Iterates until every system's residual norm is below `tol` times its right-hand side's norm.
    """
    n, c, h, w = images.shape
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    v = images.to(dtype).reshape(n * c, 1, h, w)
    m = removed.to(dtype)[:, None].repeat_interleave(c, dim=0)
    diag = _neighbours(torch.ones(1, 1, h, w, device=images.device, dtype=dtype))

    def apply(x: torch.Tensor) -> torch.Tensor:
        return m * (diag * x - _neighbours(m * x))

    b = m * _neighbours((1 - m) * v)
    x = torch.zeros_like(v)
    r = b.clone()
    z = r / diag
    p = z.clone()
    rz = (r * z).sum(dim=(1, 2, 3), keepdim=True)
    limit = (tol * b.flatten(1).norm(dim=1)).clamp_min(1e-30)
    for _ in range(max_iter):
        if bool((r.flatten(1).norm(dim=1) <= limit).all()):
            break
        ap = apply(p)
        pap = (p * ap).sum(dim=(1, 2, 3), keepdim=True)
        alpha = torch.where(pap > 0, rz / pap.clamp_min(1e-300), torch.zeros_like(pap))
        x = x + alpha * p
        r = r - alpha * ap
        z = r / diag
        rz_next = (r * z).sum(dim=(1, 2, 3), keepdim=True)
        beta = torch.where(rz > 0, rz_next / rz.clamp_min(1e-300), torch.zeros_like(rz))
        p = z + beta * p
        rz = rz_next
    filled = torch.where(m > 0, x, v)
    return filled.reshape(n, c, h, w).to(images.dtype)


def noisy_linear_impute(images: torch.Tensor, removed: torch.Tensor, noise: float,
                        generator: torch.Generator) -> torch.Tensor:
    """linear_impute plus noise * N(0, 1) on the imputed pixels; the noise is drawn on the CPU from
    `generator`, (C, H, W) per image in batch order, so results do not depend on the device."""
    filled = linear_impute(images, removed)
    if noise == 0:
        return filled
    draws = torch.stack([torch.randn(images.shape[1:], generator=generator) for _ in range(len(images))])
    draws = draws.to(images.device, images.dtype)
    return torch.where(removed[:, None], filled + noise * draws, filled)
