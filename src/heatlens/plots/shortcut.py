"""`figures/shortcut/<Class>.png`: the SpRAy clusters of one class, suspect ones marked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from heatlens.explain import cam
from heatlens.explain.shortcut import AuditSettings, ClassAudit, Cluster
from heatlens.plots.common import draw_overlay, heatmap_colorbar, panel_size, wrap_caption

SUSPECT_COLOUR = "#D55E00"  # vermillion: red for colour-blind readers too
PANEL = 2.0  # inches: the side of one panel
CAPTION_CHARS = 30  # characters of a 7 pt caption that fit one panel


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
    """Size, verdict, then each mass beside a uniform map's (in brackets), on lines that fit one panel."""
    verdict = f"SUSPECT: {', '.join(cluster.reasons)}" if cluster.suspect else "not suspect"
    lift = float(np.max(cluster.corner_mass)) / audit.corner_share
    lines = [f"cluster {index}: {cluster.size} image{'s' if cluster.size != 1 else ''}", verdict]
    if not np.isnan(cluster.outside_mass):
        lines.append(f"outside {cluster.outside_mass:.2f} ({cluster.outside_share:.2f})")
    lines.append(f"band {cluster.border_mass:.2f} ({audit.border_share:.2f}), corner {lift:.1f}\u00d7")
    return "\n".join(wrap_caption(line, CAPTION_CHARS, 2) for line in lines)


def _legend(audit: ClassAudit, settings: AuditSettings) -> str:
    """One line (wrapped) saying what every number of the row titles is."""
    outside = ("outside: share of the relevance outside the anatomy mask; " if not np.isnan(audit.outside_mass)
               else "")
    return (f"{outside}band: share in the border band ({settings.band:g} of the side wide); in brackets: what a "
            f"uniform map would put there; corner: the densest corner's relevance over a uniform map's. Suspect "
            f"when the excess over uniform reaches {settings.excess:g} or a corner {settings.corner_lift:g}\u00d7.")


def _shown_clusters(audit: ClassAudit, max_rows: int) -> list[int]:
    """Indices of the clusters drawn: suspect ones first, then the largest (the audit's order)."""
    order = sorted(range(audit.n_clusters), key=lambda k: (not audit.clusters[k].suspect, k))
    return order[:max_rows]


def shortcut_figure(audit: ClassAudit, images: np.ndarray, heatmaps: np.ndarray, class_name: str,
                    titles: Sequence[str] | None = None, examples: int = 3, max_rows: int = 4,
                    settings: AuditSettings | None = None, map_name: str = "Grad-CAM") -> Figure:
    """One row per cluster (at most `max_rows`: suspect clusters first, the rest counted in the title):
    its mean heatmap over its mean image, then its `examples` most typical images, one colour bar and a
    legend of the numbers (`settings`: the audit's thresholds, the defaults if not given).

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
    settings = settings or AuditSettings()
    size = images.shape[-2:]
    shown = _shown_clusters(audit, max_rows)
    rows = max(len(shown), 1)
    width, height = panel_size(size, PANEL)
    fig = Figure(figsize=(width * (1 + examples) + 1.0, (height + 0.55) * rows + 1.2), layout="constrained")
    axes = fig.subplots(rows, 1 + examples, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, k in enumerate(shown):
        cluster = audit.clusters[k]
        mean_map = _to_image_size(cluster.mean_heatmap[None], size)[0]
        draw_overlay(axes[row, 0], images[cluster.members].mean(axis=0), mean_map)
        axes[row, 0].set_title(_row_title(k, cluster, audit), fontsize=7,
                               color=SUSPECT_COLOUR if cluster.suspect else "black")
        picked = cluster.members[_typical_members(heatmaps[cluster.members], cluster.mean_heatmap, examples)]
        for col, (position, heat) in enumerate(zip(picked, _to_image_size(heatmaps[picked], size)), start=1):
            draw_overlay(axes[row, col], images[position], heat)
            name = str(titles[position]) if titles is not None else f"#{position}"
            axes[row, col].set_title(wrap_caption(name, CAPTION_CHARS, 2), fontsize=7)
    if not shown:
        draw_overlay(axes[0, 0], np.zeros(size), None)
        axes[0, 0].text(0.5, 0.5, "no relevance to cluster", ha="center", va="center", color="white",
                        transform=axes[0, 0].transAxes)
    else:
        heatmap_colorbar(fig, axes, label=f"{map_name}, scaled per image", shrink=min(0.8, 0.35 + 0.15 * rows))
    zero = int((audit.cluster < 0).sum())
    verdict = "FLAGGED" if audit.flag else "not flagged"
    title = f"{class_name}: {audit.n_images} images, {audit.n_clusters} cluster(s), {verdict}"
    hidden = [audit.clusters[k] for k in range(audit.n_clusters) if k not in shown]
    if hidden:
        suspect = sum(c.suspect for c in hidden)
        title += (f"\n{len(hidden)} more cluster(s) not shown ({sum(c.size for c in hidden)} images, "
                  f"{suspect} suspect)")
    if zero:
        title += f"; {zero} all-zero map(s) left out"
    fig.suptitle(title, color=SUSPECT_COLOUR if audit.flag else "black", fontsize=11)
    fig.supxlabel(wrap_caption(_legend(audit, settings), int(fig.get_figwidth() * 14), 4), fontsize=7,
                  color="dimgray")
    return fig
