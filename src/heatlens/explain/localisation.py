"""Localisation of a heatmap against a binary mask (lung, lesion, tumour), as Quantus defines it.

Per image, for heatmap a and mask s (both H x W; heatmaps of another size are resized bilinearly):
  pointing_game            1 if any pixel with the maximum of a lies in s (ties count), else 0
  relevance_mass_accuracy  sum(a inside s) / sum(a)                (meant for non-negative a)
  relevance_rank_accuracy  |top-|s| pixels of a  within s| / |s|
  top_k_intersection       |top-k pixels of a within s| / k, k = ceil(top_k * H * W)
  top_k_iou                |top-k ∩ s| / |top-k ∪ s|
  auc                      ROC AUC of a as a score for the pixels of s
Scores are NaN for an empty mask (and AUC also for a mask covering the whole image), as in Quantus.
Ranking ties are broken by pixel order (a stable sort), so results repeat.

`box_scores` adds the weakly supervised box localisation of ChestX-ray8 (Wang et al., CVPR 2017, section
4.2): the map, resized to the mask and min-max scaled per image, is thresholded; the bounding box of its
largest connected component is the predicted box, and a localisation is correct at T(IoU) when its IoU
with the ground-truth box exceeds T.
"""

import math

import numpy as np
from scipy import ndimage
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from heatlens.explain._common import to_numpy
from heatlens.explain.errors import ExplainError

SCORES = ("pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy", "top_k_intersection",
          "top_k_iou", "auc")


def _maps_and_masks(heatmaps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray
                    ) -> tuple[torch.Tensor, np.ndarray]:
    """Checked float64 maps (B, H, W), bilinearly resized to the masks' (B, H, W) (a (B, 1, H, W) mask is squeezed)."""
    masks_np = to_numpy(masks)
    if masks_np.ndim == 4 and masks_np.shape[1] == 1:
        masks_np = masks_np[:, 0]
    heat = torch.as_tensor(to_numpy(heatmaps), dtype=torch.float64)
    if heat.ndim != 3 or masks_np.ndim != 3 or len(heat) != len(masks_np):
        raise ExplainError(f"heatmaps must be (B, h, w) and masks (B, H, W) with the same B, got "
                           f"{tuple(heat.shape)} and {masks_np.shape}")
    if tuple(heat.shape[1:]) != masks_np.shape[1:]:
        heat = F.interpolate(heat[:, None], size=masks_np.shape[1:], mode="bilinear", align_corners=False)[:, 0]
    return heat, masks_np


def localisation_scores(heatmaps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray,
                        top_k: float = 0.1) -> dict[str, np.ndarray]:
    """Every score above for a batch: heatmaps (B, h, w), masks (B, H, W) -> {name: (B,) float64}."""
    if not 0 < top_k <= 1:
        raise ExplainError(f"top_k is a fraction of the pixels in (0, 1], got {top_k}")
    heat, masks_np = _maps_and_masks(heatmaps, masks)
    if not np.isin(masks_np, (0, 1)).all():
        raise ExplainError(f"masks must be binary (0/1), got values {np.unique(masks_np)[:5].tolist()}")
    a_all = heat.flatten(1).numpy()
    s_all = masks_np.reshape(len(masks_np), -1).astype(bool)
    out = {name: np.full(len(a_all), np.nan) for name in SCORES}
    k = math.ceil(top_k * a_all.shape[1])
    for i, (a, s) in enumerate(zip(a_all, s_all)):
        inside = int(s.sum())
        if inside == 0:
            continue
        order = np.argsort(-a, kind="stable")  # most relevant first
        out["pointing_game"][i] = float(s[a == a.max()].any())
        out["relevance_mass_accuracy"][i] = a[s].sum() / a.sum() if a.sum() != 0 else np.nan
        out["relevance_rank_accuracy"][i] = s[order[:inside]].sum() / inside
        top = np.zeros_like(s)
        top[order[:k]] = True
        hits = int((top & s).sum())
        out["top_k_intersection"][i] = hits / k
        out["top_k_iou"][i] = hits / int((top | s).sum())
        if inside < len(s):
            out["auc"][i] = roc_auc_score(s, a)
    return out


IOU_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)  # T(IoU) of ChestX-ray8's Table 3


def _boxes(binary: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) inclusive bounding box of each 8-connected component, largest first."""
    labelled, count = ndimage.label(binary, structure=np.ones((3, 3)))
    if not count:
        return []
    sizes = np.bincount(labelled.ravel())[1:]
    slices = ndimage.find_objects(labelled)
    order = sorted(range(count), key=lambda i: (-sizes[i], i))
    return [(slices[i][0].start, slices[i][1].start, slices[i][0].stop - 1, slices[i][1].stop - 1) for i in order]


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two inclusive pixel boxes (top, left, bottom, right)."""
    height = min(a[2], b[2]) - max(a[0], b[0]) + 1
    width = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(height, 0) * max(width, 0)
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area - inter)


def box_scores(heatmaps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray, threshold: float = 0.5,
               thresholds: tuple[float, ...] = IOU_THRESHOLDS) -> dict[str, np.ndarray]:
    """Box localisation for a batch: heatmaps (B, h, w), box masks (B, H, W) -> {name: (B,) float64}.

    `box_iou`: IoU of the box around the largest component of {map >= threshold} (map min-max scaled to
    [0, 1] after bilinear resizing) with the best-matching ground-truth box (each connected component of
    the mask is one box); `hit_iou_<T>`: 1.0 when that IoU exceeds T, else 0.0. NaN for an empty mask.
    A constant map selects the whole image.
    """
    if not 0 <= threshold <= 1:
        raise ExplainError(f"threshold is a fraction of the map's range in [0, 1], got {threshold}")
    heat, masks_np = _maps_and_masks(heatmaps, masks)
    out = {"box_iou": np.full(len(heat), np.nan)} | {f"hit_iou_{t:g}": np.full(len(heat), np.nan) for t in thresholds}
    for i, (a, s) in enumerate(zip(heat.numpy(), masks_np > 0)):
        truth = _boxes(s)
        if not truth:
            continue
        span = a.max() - a.min()
        scaled = (a - a.min()) / span if span > 0 else np.ones_like(a)
        predicted = _boxes(scaled >= threshold)[0]
        iou = max(box_iou(predicted, box) for box in truth)
        out["box_iou"][i] = iou
        for t in thresholds:
            out[f"hit_iou_{t:g}"][i] = float(iou > t)
    return out
