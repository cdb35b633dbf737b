"""`figures/shortcut/<Class>.png`: the SpRAy clusters of one class, suspect ones marked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from heatlens.explain import cam
from heatlens.explain.shortcut import ClassAudit, Cluster
from heatlens.plots.explain import _grey, _overlay

SUSPECT_COLOUR = "tab:red"


def _to_image_size(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of (N, h, w) maps to the images, each scaled to a peak of 1 for display."""
    big = cam.upsample(torch.as_tensor(maps, dtype=torch.float32), size).numpy()
    peak = big.max(axis=(1, 2), keepdims=True)
    return np.clip(big / np.where(peak > 0, peak, 1.0), 0.0, 1.0)


def _typical_members(audit_maps: np.ndarray, mean_heatmap: np.ndarray, count: int) -> np.ndarray:
    """Positions (within the cluster) of the `count` maps most similar (cosine) to the cluster's mean map."""
    flat = audit_maps.reshape(len(audit_maps), -1)
    mean = mean_heatmap.ravel()
    similarity = flat @ mean / (np.linalg.norm(flat, axis=1) * np.linalg.norm(mean) + 1e-12)
    return np.argsort(-similarity, kind="stable")[:count]


def _row_title(index: int, cluster: Cluster, audit: ClassAudit) -> str:
    """Three short lines: size, verdict, masses beside their uniform share (fits one panel's width)."""
    verdict = f"SUSPECT: {', '.join(cluster.reasons)}" if cluster.suspect else "not suspect"
    outside = "" if np.isnan(cluster.outside_mass) else f"out {cluster.outside_mass:.2f}/{cluster.outside_share:.2f}  "
    lift = float(np.max(cluster.corner_mass)) / audit.corner_share
    return (f"cluster {index}: {cluster.size} image{'s' if cluster.size != 1 else ''}\n{verdict}\n"
            f"{outside}band {cluster.border_mass:.2f}/{audit.border_share:.2f}  corner x{lift:.1f}")


def shortcut_figure(audit: ClassAudit, images: np.ndarray, heatmaps: np.ndarray, class_name: str,
                    titles: Sequence[str] | None = None, examples: int = 3, alpha: float = 0.5) -> Figure:
    """One row per cluster: its mean heatmap over its mean image, then its `examples` most typical images.

    images (N, C, H, W) or (N, H, W) in [0, 1] and heatmaps (N, h, w), in the order `audit` saw them;
    `titles` (N,) name the example images (e.g. sample ids), by default their position.
    Suspect clusters carry a red title with the reasons; all-zero maps (no cluster) are counted in the title.
    """
    images = np.asarray(images, dtype=np.float32)
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    counts = (len(images), len(heatmaps), audit.n_images if titles is None else len(titles))
    if set(counts) != {audit.n_images}:
        raise ValueError(f"shortcut_figure needs the {audit.n_images} images, heatmaps and titles of the audit, "
                         f"got {', '.join(map(str, counts))}")
    size = images.shape[-2:]
    rows = max(audit.n_clusters, 1)
    fig = Figure(figsize=(2.3 * (1 + examples), 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, 1 + examples, squeeze=False)
    for row, cluster in enumerate(audit.clusters):
        mean_image = images[cluster.members].mean(axis=0)
        mean_map = _to_image_size(cluster.mean_heatmap[None], size)[0]
        axes[row, 0].imshow(_overlay(mean_image, mean_map, alpha))
        axes[row, 0].set_title(_row_title(row, cluster, audit), fontsize=7,
                               color=SUSPECT_COLOUR if cluster.suspect else "black")
        picked = cluster.members[_typical_members(heatmaps[cluster.members], cluster.mean_heatmap, examples)]
        for col, (image, heat) in enumerate(zip(images[picked], _to_image_size(heatmaps[picked], size)), start=1):
            axes[row, col].imshow(_overlay(image, heat, alpha))
            axes[row, col].set_title(titles[picked[col - 1]] if titles is not None else f"#{picked[col - 1]}",
                                     fontsize=7)
    if not audit.clusters:
        base, cmap = _grey(np.zeros(size))
        axes[0, 0].imshow(base, cmap=cmap, vmin=0, vmax=1)
        axes[0, 0].text(0.5, 0.5, "no relevance to cluster", ha="center", va="center", color="white",
                        transform=axes[0, 0].transAxes)
    for ax in axes.flat:
        ax.axis("off")
    zero = int((audit.cluster < 0).sum())
    verdict = "FLAGGED" if audit.flag else "not flagged"
    fig.suptitle(f"{class_name}: {audit.n_images} images, {audit.n_clusters} cluster(s), {verdict}"
                 + (f"; {zero} all-zero map(s) left out" if zero else ""),
                 color=SUSPECT_COLOUR if audit.flag else "black")
    return fig
