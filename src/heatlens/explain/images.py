"""Small per-image summaries kept beside the heatmaps: grey thumbnails and mask shares per feature cell."""

import numpy as np
import torch
import torch.nn.functional as F

from heatlens.explain.errors import ExplainError

THUMBNAIL_SIDE = 64


def thumbnails(images: torch.Tensor, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """(B, C, H, W) images in [0, 1] -> (B, h, w) uint8 grey, the longer side `side` (never enlarged),
    aspect kept; area averaging, so thin structures fade instead of aliasing."""
    if images.ndim != 4:
        raise ExplainError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    grey = images.detach().float().mean(dim=1, keepdim=True)
    small = F.interpolate(grey, size=size, mode="area")[:, 0]
    return (small.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def mask_shares(masks: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(B, 1, H, W) or (B, H, W) binary masks -> (B, h, w) float32: the share of each cell of an
    h x w grid (e.g. the Grad-CAM feature map) that lies inside the mask; (B, K, H, W) masks (one per
    finding) -> (B, K, h, w)."""
    if masks.ndim == 3:
        masks = masks[:, None]
    if masks.ndim != 4:
        raise ExplainError(f"masks must be (B, K, H, W) or (B, H, W), got shape {tuple(masks.shape)}")
    shares = F.adaptive_avg_pool2d(masks.float(), tuple(size)).cpu().numpy()
    return shares[:, 0] if masks.shape[1] == 1 else shares
