"""Drawing helpers shared by the figures: images, Grad-CAM overlays, signed maps, short labels."""

from __future__ import annotations

import re
from collections.abc import Sequence

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
# One colour per class, by the class's position in the dataset's class list, in every figure. The first
# eight are Okabe & Ito's colour-blind-safe palette (yellow and black last: weakest on white and on an
# X-ray); beyond eight, Paul Tol's "muted" colours, no longer guaranteed apart for colour-blind readers.
CLASS_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
                 "#332288", "#882255", "#999933", "#44AA99", "#CC6677", "#DDCC77", "#117733")
LINE_STYLES = ("-", "--", "-.", ":")


def class_colour(index: int) -> str:
    """The colour of the class at `index` of the dataset's class list (cycling past the palette)."""
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def class_colours(class_names: Sequence[str]) -> dict[str, str]:
    """Class name -> its colour; pass the dataset's full class list so a class keeps its colour in a
    figure that leaves another class out."""
    return {str(name): class_colour(k) for k, name in enumerate(class_names)}


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


def wrap_caption(text: str, width: int, max_lines: int = 2) -> str:
    """Each line of `text` wrapped at `width` characters (after a space or a slash, so paths break between
    folders) into at most `max_lines` lines; a rest that does not fit is shortened, keeping its end."""
    lines = []
    for line in str(text).split("\n"):
        parts = [""]
        for token in re.split(r"(?<=[ /])", line):
            while len(token) > width:  # a single word wider than the panel
                parts[-1:] = [parts[-1], token[:width]] if parts[-1] else [token[:width]]
                token = token[width:]
            if len(parts[-1]) + len(token.rstrip()) > width:
                parts.append("")
            parts[-1] += token
        parts = [part.rstrip() for part in parts]
        if len(parts) > max_lines:
            kept = max_lines - 1
            parts = parts[:kept] + [ellipsise(line[sum(map(len, parts[:kept])):].strip(), width)]
        lines.extend(parts)
    return "\n".join(lines)


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


def draw_signed(ax: Axes, image: np.ndarray | None, signed: np.ndarray, limit: float) -> ScalarMappable:
    """A signed map on the diverging scale +-`limit` (white at zero); over `image` (grey) its opacity
    grows with |value|, so the anatomy shows where the map is near zero. Returns what a colour bar needs."""
    ax.set_xticks([])
    ax.set_yticks([])
    signed = np.asarray(signed, dtype=np.float32)
    if image is None:
        return ax.imshow(signed, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit)
    base, _ = as_display_image(image)
    grey = np.repeat(base[..., None], 3, axis=-1) if base.ndim == 2 else base
    signed = np.nan_to_num(resize_to(signed, base.shape[:2]))
    mappable = ScalarMappable(Normalize(-limit, limit), colormaps[SIGNED_CMAP])
    alpha = np.clip(1.6 * np.abs(signed) / limit, 0, 0.85)[..., None]
    # blended here rather than by imshow's per-pixel alpha, which resampling rings at zero crossings
    ax.imshow((1 - alpha) * grey + alpha * mappable.to_rgba(signed)[..., :3], interpolation="bilinear")
    return mappable


def heatmap_colorbar(fig, axes, label: str = "Grad-CAM (fraction of the map's maximum)", **kwargs):
    """One colour bar for every overlay drawn with draw_overlay / blend (jet over [0, 1])."""
    mappable = ScalarMappable(Normalize(0, 1), colormaps[HEATMAP_CMAP])
    return fig.colorbar(mappable, ax=axes, label=label, **kwargs)


def panel_size(image_shape: tuple[int, ...], width: float) -> tuple[float, float]:
    """(width, height) in inches of a panel showing an image of `image_shape` ((H, W) last or first)."""
    shape = [s for s in image_shape if s not in (1, 3)] or list(image_shape)
    height, breadth = (shape[-2], shape[-1]) if len(shape) >= 2 else (1, 1)
    return width, width * height / max(breadth, 1)
