"""Built-in phantom chest X-ray dataset, written in the COVID-19 Radiography Database layout.

`<root>/<Class>/images/<Class>-<i>.png`, `<root>/<Class>/masks/...` (lung fields),
`<root>/<Class>/lesions/...` (ground-truth lesions, empty for Normal) and `manifest.csv`.
"""

import csv
import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from heatlens.data.atomic import build_once
from heatlens.data.errors import DataError
from heatlens.data.phantom_render import RenderedBatch, render_batch

log = logging.getLogger(__name__)

CLASS_NAMES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")
# Roughly the class balance of the COVID-19 Radiography Database.
DEFAULT_CLASS_FRACTIONS = (0.17, 0.28, 0.48, 0.07)
# Bump when the rendering changes so cached phantoms are regenerated.
GENERATOR_VERSION = 3
_CHUNK = 128


@dataclass(frozen=True)
class PhantomSpec:
    num_images: int = 2000
    source_size: int = 128
    seed: int = 0
    class_fractions: tuple[float, ...] = DEFAULT_CLASS_FRACTIONS
    shortcut_fraction: float = 0.0
    shortcut_class: str = "COVID"

    def __post_init__(self) -> None:
        if self.num_images < len(CLASS_NAMES):
            raise DataError(f"data.num_images={self.num_images}: need at least {len(CLASS_NAMES)} (one per class)")
        if self.source_size < 32:
            raise DataError(f"data.source_size={self.source_size}: the phantom needs at least 32 px")
        if len(self.class_fractions) != len(CLASS_NAMES) or min(self.class_fractions) <= 0:
            raise DataError(f"data.class_fractions={list(self.class_fractions)}: need {len(CLASS_NAMES)} positive "
                            f"numbers, one per class {list(CLASS_NAMES)}")
        if not 0.0 <= self.shortcut_fraction <= 1.0:
            raise DataError(f"data.shortcut.fraction={self.shortcut_fraction}: must be within [0, 1]")
        if self.shortcut_class not in CLASS_NAMES:
            raise DataError(f"data.shortcut.class_name={self.shortcut_class!r}: not one of {list(CLASS_NAMES)}")

    def key(self) -> str:
        """Short hash of the generation parameters: the folder name under the cache."""
        payload = json.dumps({**asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def class_counts(self) -> list[int]:
        """Images per class by largest remainder, at least one each."""
        total = sum(self.class_fractions)
        exact = [self.num_images * f / total for f in self.class_fractions]
        counts = [max(1, int(e)) for e in exact]
        by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
        for i in by_remainder[: self.num_images - sum(counts)]:
            counts[i] += 1
        return counts


def generate(spec: PhantomSpec, root: Path) -> None:
    """Render and write the whole dataset into `root` (which must be empty or absent)."""
    rng = np.random.default_rng(spec.seed)
    counts = spec.class_counts()
    labels = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    within_class = np.concatenate([np.arange(1, c + 1) for c in counts])
    shortcut = np.zeros(len(labels), dtype=bool)
    target = CLASS_NAMES.index(spec.shortcut_class)
    chosen = np.flatnonzero(labels == target)
    shortcut[rng.choice(chosen, size=round(spec.shortcut_fraction * len(chosen)), replace=False)] = True
    order = rng.permutation(len(labels))  # mix classes within each rendered chunk

    for name in CLASS_NAMES:
        for sub in ("images", "masks", "lesions"):
            (root / name / sub).mkdir(parents=True, exist_ok=True)
    chunk_seeds = np.random.SeedSequence(spec.seed).spawn((len(order) + _CHUNK - 1) // _CHUNK)
    # PNG encoding releases the GIL: writing one chunk overlaps with rendering the next.
    with ThreadPoolExecutor(max_workers=2) as pool:
        writes = []
        for chunk_index, start in enumerate(range(0, len(order), _CHUNK)):
            picked = order[start:start + _CHUNK]
            batch = render_batch(np.random.default_rng(chunk_seeds[chunk_index]), labels[picked],
                                 spec.source_size, shortcut[picked])
            names = [f"{CLASS_NAMES[labels[i]]}-{within_class[i]}.png" for i in picked]
            writes.append(pool.submit(_write_chunk, root, batch, labels[picked], names, shortcut[picked]))
        rows = [row for write in writes for row in write.result()]
    rows.sort()
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "class", "lesion_area", "has_shortcut"])
        writer.writerows(rows)
    (root / "phantom.json").write_text(json.dumps({**asdict(spec), "version": GENERATOR_VERSION}, indent=2))


def _write_chunk(root: Path, batch: RenderedBatch, labels: np.ndarray, names: list[str],
                 shortcut: np.ndarray) -> list[tuple]:
    image_png = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    mask_png = [cv2.IMWRITE_PNG_BILEVEL, 1]  # 1-bit PNG: masks hold only 0 / 255
    rows = []
    for j, file_name in enumerate(names):
        class_name = CLASS_NAMES[labels[j]]
        relative = f"{class_name}/images/{file_name}"
        cv2.imwrite(str(root / relative), np.rint(batch.images[j] * 255).astype(np.uint8), image_png)
        cv2.imwrite(str(root / class_name / "masks" / file_name), batch.lungs[j].astype(np.uint8) * 255, mask_png)
        cv2.imwrite(str(root / class_name / "lesions" / file_name), batch.lesions[j].astype(np.uint8) * 255,
                    mask_png)
        rows.append((relative, class_name, f"{batch.lesions[j].mean():.5f}", int(shortcut[j])))
    return rows


def ensure_phantom(spec: PhantomSpec, root: Path) -> Path:
    """Generate the phantom into `root` unless a complete copy is there; safe across processes."""
    return build_once(root, lambda tmp: _generate_logged(spec, tmp))


def _generate_logged(spec: PhantomSpec, root: Path) -> None:
    log.info("Generating phantom dataset (%d images, %d px) into %s", spec.num_images, spec.source_size, root)
    generate(spec, root)
