"""Vectorised rendering of phantom chest radiographs: anatomy, class lesions, intensity neutralisation.

Coordinates are normalised to [-1, 1] (x to the image right = patient left, y downwards); every
per-image random parameter is an array of shape (B, 1, 1) so a whole batch renders at once.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

COVID, LUNG_OPACITY, NORMAL, VIRAL_PNEUMONIA = range(4)


@dataclass
class RenderedBatch:
    images: np.ndarray  # (B, S, S) float in [0, 1]
    lungs: np.ndarray  # (B, S, S) bool lung-field masks
    lesions: np.ndarray  # (B, S, S) bool ground-truth lesion masks


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return rng.uniform(low, high, size=(n, 1, 1)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, n: int, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid upsampled bicubically."""
    coarse = torch.from_numpy(rng.standard_normal((n, 1, cells, cells)).astype(np.float32))
    fine = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=True)
    return fine[:, 0].numpy() / 1.5


def _soft_ellipse(x, y, cx, cy, rx, ry, edge: float) -> np.ndarray:
    radius = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    return _sigmoid((1.0 - radius) / edge)


def _posed_grid(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Body coordinates after a random rotation, scale and shift of the patient in the frame."""
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    u, v = np.meshgrid(axis, axis)
    theta = np.deg2rad(_uniform(rng, -6.0, 6.0, n))
    scale = _uniform(rng, 0.9, 1.05, n)
    du = u[None] - _uniform(rng, -0.06, 0.06, n)
    dv = v[None] - _uniform(rng, -0.06, 0.06, n)
    x = (np.cos(theta) * du + np.sin(theta) * dv) / scale
    y = (-np.sin(theta) * du + np.cos(theta) * dv) / scale
    return x, y


@dataclass
class _Lung:
    field: np.ndarray  # soft membership in [0, 1]
    cx: np.ndarray
    cy: np.ndarray
    rx: np.ndarray
    ry: np.ndarray


def _lung(rng, x, y, side: int, n: int) -> _Lung:
    """One lung field: an ellipse cut from below by its hemidiaphragm dome."""
    cx = side * _uniform(rng, 0.33, 0.40, n)
    cy = _uniform(rng, -0.12, -0.02, n)
    rx = _uniform(rng, 0.20, 0.25, n)
    ry = _uniform(rng, 0.50, 0.58, n)
    # The right hemidiaphragm (image left, side -1) sits a little higher, as in real films.
    dome_top = cy + ry * _uniform(rng, 0.45, 0.6, n) + (0.04 if side > 0 else 0.0)
    dome = dome_top + 0.9 * (x - cx) ** 2
    field = _soft_ellipse(x, y, cx, cy, rx, ry, 0.04) * _sigmoid((dome - y) / 0.02)
    return _Lung(field, cx, cy, rx, ry)


def _anatomy(rng, x, y, n: int, size: int) -> tuple[np.ndarray, np.ndarray, list[_Lung]]:
    torso = _soft_ellipse(x, y, 0.0, 0.15, _uniform(rng, 0.78, 0.9, n), 1.15, 0.03)
    lungs = [_lung(rng, x, y, side, n) for side in (-1, 1)]
    heart = _soft_ellipse(
        x, y, _uniform(rng, 0.08, 0.16, n), _uniform(rng, 0.22, 0.32, n),
        _uniform(rng, 0.22, 0.28, n), _uniform(rng, 0.20, 0.26, n), 0.05,
    )
    air = np.maximum(lungs[0].field, lungs[1].field) * (1.0 - 0.8 * heart)
    spine = _sigmoid((0.06 - np.abs(x)) / 0.01) * _sigmoid((y + 0.8) / 0.05)
    vertebrae = 1.0 + 0.25 * np.cos(y * 40.0 + _uniform(rng, 0, 2 * np.pi, n))
    rib_phase = (y - 0.6 * x**2) / _uniform(rng, 0.15, 0.19, n) + _uniform(rng, 0, 1, n)
    rib_profile = np.clip((np.cos(2 * np.pi * rib_phase) - 0.5) / 0.5, 0.0, 1.0)
    rib_zone = torso * _sigmoid((np.abs(x) - 0.08) / 0.02) * _sigmoid((0.45 - y) / 0.05)
    image = (
        0.08
        + 0.35 * torso * _uniform(rng, 0.9, 1.1, n)
        - 0.22 * air * _uniform(rng, 0.8, 1.2, n)
        + 0.12 * heart
        + 0.15 * spine * vertebrae
        + 0.07 * rib_profile * rib_zone
        + 0.03 * _smooth_noise(rng, n, size, 6) * torso
    )
    return image, air, lungs


def _blob(rng, x, y, cx, cy, radius, softness: float, n: int, size: int) -> np.ndarray:
    """Irregular blob envelope: distance warped by low-frequency noise so edges are not circles."""
    distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / radius
    distance = distance * (1.0 + 0.25 * _smooth_noise(rng, n, size, 5))
    return _sigmoid((1.0 - distance) / softness)


def _covid(rng, x, y, lungs: list[_Lung], n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Faint peripheral lower-zone ground-glass patches, bilateral in about 70 % of cases."""
    bilateral = rng.random(n) < 0.7
    only_side = rng.integers(0, 2, n)
    intensity = np.zeros_like(x)
    envelope = np.zeros_like(x)
    for side_index, (lung, side) in enumerate(zip(lungs, (-1, 1))):
        present = (bilateral | (only_side == side_index)).astype(float)[:, None, None]
        cx = lung.cx + side * lung.rx * _uniform(rng, 0.35, 0.6, n)
        cy = lung.cy + lung.ry * _uniform(rng, 0.2, 0.45, n)
        blob = _blob(rng, x, y, cx, cy, _uniform(rng, 0.11, 0.16, n), 0.3, n, size) * present
        glass = 0.85 + 0.15 * _smooth_noise(rng, n, size, 16)
        intensity += blob * glass * _uniform(rng, 0.16, 0.22, n)
        envelope = np.maximum(envelope, blob)
    return intensity, envelope


def _opacity(rng, x, y, lungs: list[_Lung], n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One dense consolidation patch somewhere in one lung."""
    right = (rng.random(n) < 0.5)[:, None, None]
    cx, cy, rx, ry = (np.where(right, getattr(lungs[1], a), getattr(lungs[0], a)) for a in ("cx", "cy", "rx", "ry"))
    cx = cx + rx * _uniform(rng, -0.45, 0.45, n)
    cy = cy + ry * _uniform(rng, -0.5, 0.35, n)
    blob = _blob(rng, x, y, cx, cy, _uniform(rng, 0.12, 0.18, n), 0.1, n, size)
    return blob * _uniform(rng, 0.26, 0.34, n), blob


def _reticular(rng, x, y, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse net-like pattern over both lungs, patchy through a low-frequency envelope."""
    angle = _uniform(rng, 0.0, np.pi / 2, n)
    frequency = _uniform(rng, 4.0, 5.5, n)
    net = np.zeros_like(x)
    for rotation in (0.0, np.pi / 2):
        along = x * np.cos(angle + rotation) + y * np.sin(angle + rotation)
        phase = along * frequency + _uniform(rng, 0, 1, n)
        offset = np.abs(phase - np.round(phase))
        net = np.maximum(net, np.exp(-((offset / 0.12) ** 2)))
    envelope = np.clip(0.7 + 0.7 * _smooth_noise(rng, n, size, 4), 0.0, 1.0)
    return net * envelope * _uniform(rng, 0.14, 0.18, n), envelope


def _neutralise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give each image a random mean and std drawn independently of its class, so global
    intensity statistics carry no class information (the lesions' added brightness is hidden)."""
    n = len(images)
    mean = images.mean(axis=(1, 2), keepdims=True)
    std = images.std(axis=(1, 2), keepdims=True)
    target_mean = _uniform(rng, 0.42, 0.56, n)
    target_std = _uniform(rng, 0.16, 0.21, n)
    return np.clip((images - mean) / std * target_std + target_mean, 0.0, 1.0)


def render_batch(rng: np.random.Generator, classes: np.ndarray, size: int, shortcut: np.ndarray,
                 shortcut_kind: str = "corner") -> RenderedBatch:
    """Render one radiograph per entry of `classes`; `shortcut` (bool per image) adds the shortcut of
    `shortcut_kind`: "corner" a bright marker in the top-left corner, "frame" a wide black frame (`_framed`)."""
    n = len(classes)
    x, y = _posed_grid(rng, n, size)
    image, air, lungs = _anatomy(rng, x, y, n, size)
    lung_mask = air > 0.5
    lesion = np.zeros_like(image)
    envelope = np.zeros_like(image)
    for label, draw in ((COVID, _covid), (LUNG_OPACITY, _opacity)):
        chosen = classes == label
        if chosen.any():
            chosen_lungs = [_subset(lung, chosen) for lung in lungs]
            lesion[chosen], envelope[chosen] = draw(rng, x[chosen], y[chosen], chosen_lungs, int(chosen.sum()), size)
    chosen = classes == VIRAL_PNEUMONIA
    if chosen.any():
        lesion[chosen], envelope[chosen] = _reticular(rng, x[chosen], y[chosen], int(chosen.sum()), size)
    image = image + lesion * air
    image = image + rng.standard_normal(image.shape, dtype=np.float32) * _uniform(rng, 0.01, 0.025, n)
    image = _neutralise(image, rng)
    lesion_mask = lung_mask & (envelope > 0.5)
    if shortcut_kind == "frame":
        return _framed(rng, RenderedBatch(image, lung_mask, lesion_mask), shortcut)
    marker = max(2, size // 16)
    start = max(1, size // 32)
    image[shortcut, start:start + marker, start:start + marker] = 1.0
    return RenderedBatch(image, lung_mask, lesion_mask)


def _framed(rng: np.random.Generator, batch: RenderedBatch, chosen: np.ndarray) -> RenderedBatch:
    """The chosen images shrunk to 60-75 % of the side inside a black frame (12-20 % of the side each
    way), masks alike: the class-dependent acquisition of a second source (small skulls on wide black)."""
    size = batch.images.shape[-1]
    images, lungs, lesions = batch.images.copy(), batch.lungs.copy(), batch.lesions.copy()
    for i, scale in zip(np.flatnonzero(chosen), rng.uniform(0.6, 0.75, int(chosen.sum()))):
        inner = int(round(scale * size))
        start = (size - inner) // 2
        for array, threshold in ((images, None), (lungs, 0.5), (lesions, 0.5)):
            small = F.interpolate(torch.from_numpy(array[i].astype(np.float32))[None, None], size=(inner, inner),
                                  mode="area")[0, 0].numpy()
            array[i] = 0
            array[i, start:start + inner, start:start + inner] = small if threshold is None else small >= threshold
    return RenderedBatch(images, lungs, lesions)


def _subset(lung: _Lung, chosen: np.ndarray) -> _Lung:
    return _Lung(lung.field[chosen], lung.cx[chosen], lung.cy[chosen], lung.rx[chosen], lung.ry[chosen])
