"""Drawing helpers shared by the figures: images, Grad-CAM overlays, signed maps, short labels."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from heatlens.explain import cam

HEATMAP_CMAP = "jet"  # the Grad-CAM papers' colours, for maps scaled to [0, 1]
SIGNED_CMAP = "RdBu_r"  # diverging, white at zero: raw (signed) Grad-CAM, eigen-heatmaps
ELLIPSIS = "…"


def ellipsise(text: str, width: int = 32) -> str:
    """`text` cut to `width` characters with an ellipsis, keeping its end: as much of a path's file name
    as fits (what tells images apart), else the last two thirds."""
    text = str(text)
    if width < 3 or len(text) <= width:
        return text
    file_name = text.rsplit("/", 1)[-1]
    tail = min(len(file_name) + 1, width - 1) if "/" in text else (width - 1) * 2 // 3
    return text[: width - 1 - tail] + ELLIPSIS + text[len(text) - tail:]


def ellipsise_lines(text: str, width: int = 32) -> str:
    return "\n".join(ellipsise(line, width) for line in str(text).split("\n"))


def as_display_image(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(H, W), (1, H, W), (3, H, W), (H, W, 1) or (H, W, 3), float in [0, 1] or uint8 -> (imshow array, cmap)."""
    image = np.asarray(image)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    image = image.astype(np.float32) / scale
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    # float32 denormalised images overshoot 1 by rounding; imshow warns on every such image
    return np.clip(image, 0, 1), (None if image.ndim == 3 else "gray")


def symmetric_limit(values: np.ndarray) -> float:
    """The largest |value| among the finite ones (1 when there is none): a colour scale centred on zero."""
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def resize_to(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (h, w) map to `shape` (the image's), as the explanations upsample."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape == tuple(shape):
        return heatmap
    return cam.upsample(torch.from_numpy(heatmap)[None], tuple(shape))[0].numpy()


def draw_overlay(ax: Axes, image: np.ndarray | None, heatmap: np.ndarray | None, fade_below: float = 0.25,
                 opacity: float = 0.6) -> bool:
    """The image in grey with the heatmap (values in [0, 1]) on top; low relevance fades out so the
    X-ray stays visible where the model did not look. Returns False when the map has no positive value."""
    shape = None
    if image is not None:
        base, cmap = as_display_image(image)
        ax.imshow(base, cmap=cmap, vmin=0, vmax=1)
        shape = base.shape[:2]
    ax.set_xticks([])
    ax.set_yticks([])
    if heatmap is None:
        return False
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0, 1)
    if shape is not None:
        heat = resize_to(heat, shape)
    if not heat.max() > 0:
        ax.text(0.5, 0.5, "no positive\nrelevance", transform=ax.transAxes, ha="center", va="center",
                fontsize=7, color="white" if image is not None else "black",
                bbox={"facecolor": "black", "alpha": 0.35, "lw": 0} if image is not None else None)
        return False
    alpha = opacity * np.clip(heat / fade_below, 0, 1) if image is not None else None
    ax.imshow(heat, cmap=HEATMAP_CMAP, vmin=0, vmax=1, alpha=alpha, interpolation="bilinear")
    return True


def heatmap_colorbar(fig, axes, label: str = "Grad-CAM (fraction of the map's maximum)", **kwargs):
    """One colour bar for every overlay drawn with draw_overlay / blend (jet over [0, 1])."""
    mappable = ScalarMappable(Normalize(0, 1), colormaps[HEATMAP_CMAP])
    return fig.colorbar(mappable, ax=axes, label=label, **kwargs)


def panel_size(image_shape: tuple[int, ...], width: float) -> tuple[float, float]:
    """(width, height) in inches of a panel showing an image of `image_shape` ((H, W) last or first)."""
    shape = [s for s in image_shape if s not in (1, 3)] or list(image_shape)
    height, breadth = (shape[-2], shape[-1]) if len(shape) >= 2 else (1, 1)
    return width, width * height / max(breadth, 1)
