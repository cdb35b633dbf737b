"""Built-in phantom chest X-ray dataset, written in the COVID-19 Radiography Database layout.

`<root>/<Class>/images/<Class>-<i>.png`, `<root>/<Class>/masks/...` (lung fields),
`<root>/<Class>/lesions/...` (ground-truth lesions, empty for Normal) and `manifest.csv`.
"""

import csv
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from heatlens.data.atomic import build_once
from heatlens.data.errors import DataError
from heatlens.data.parallel import chunk_runner, worker_count
from heatlens.data.phantom_render import render_batch
from heatlens.progress import progress_bar

log = logging.getLogger(__name__)

CLASS_NAMES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")
# Roughly the class balance of the COVID-19 Radiography Database.
DEFAULT_CLASS_FRACTIONS = (0.17, 0.28, 0.48, 0.07)
# Bump when the rendering changes so cached phantoms are regenerated.
GENERATOR_VERSION = 4
# Images rendered together: 128 up to 128 px, fewer above so a chunk's float32 temporaries stay
# around the size of 128 images of 128 px (tens of MB per worker) at any source size.
_CHUNK_PIXELS = 128 * 128 * 128
SHORTCUT_KINDS = ("corner", "frame")


@dataclass(frozen=True)
class PhantomSpec:
    num_images: int = 2000
    source_size: int = 128
    seed: int = 0
    class_fractions: tuple[float, ...] = DEFAULT_CLASS_FRACTIONS
    shortcut_fraction: float = 0.0
    shortcut_class: str = "COVID"
    shortcut_kind: str = "corner"  # corner | frame (phantom_render.render_batch)
    mask_size: int | None = None  # side of the mask PNGs; None: source_size (the database: 256 for 299)

    def __post_init__(self) -> None:
        if self.num_images < len(CLASS_NAMES):
            raise DataError(f"data.num_images={self.num_images}: need at least {len(CLASS_NAMES)} (one per class)")
        if self.source_size < 32:
            raise DataError(f"data.source_size={self.source_size}: the phantom needs at least 32 px")
        if self.mask_size is not None and self.mask_size < 8:
            raise DataError(f"data.mask_size={self.mask_size}: expected at least 8 px, or null (= data.source_size)")
        if len(self.class_fractions) != len(CLASS_NAMES) or min(self.class_fractions) <= 0:
            raise DataError(f"data.class_fractions={list(self.class_fractions)}: need {len(CLASS_NAMES)} positive "
                            f"numbers, one per class {list(CLASS_NAMES)}")
        if not 0.0 <= self.shortcut_fraction <= 1.0:
            raise DataError(f"data.shortcut.fraction={self.shortcut_fraction}: must be within [0, 1]")
        if self.shortcut_class not in CLASS_NAMES:
            raise DataError(f"data.shortcut.class_name={self.shortcut_class!r}: not one of {list(CLASS_NAMES)}")
        if self.shortcut_kind not in SHORTCUT_KINDS:
            raise DataError(f"data.shortcut.kind={self.shortcut_kind!r}: not one of {list(SHORTCUT_KINDS)}")

    def key(self) -> str:
        """Short hash of the generation parameters: the folder name under the cache."""
        fields = asdict(self)
        if fields["shortcut_kind"] == "corner":  # the default keeps the folders generated before it existed
            del fields["shortcut_kind"]
        payload = json.dumps({**fields, "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def mask_side(self) -> int:
        return self.mask_size or self.source_size

    def chunk_size(self) -> int:
        return int(min(128, max(8, _CHUNK_PIXELS // self.source_size**2)))

    def class_counts(self) -> list[int]:
        """Images per class by largest remainder, at least one each."""
        total = sum(self.class_fractions)
        exact = [self.num_images * f / total for f in self.class_fractions]
        counts = [max(1, int(e)) for e in exact]
        by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
        for i in by_remainder[: self.num_images - sum(counts)]:
            counts[i] += 1
        return counts


def _resize_mask(mask: np.ndarray, side: int) -> np.ndarray:
    if mask.shape[0] == side:
        return mask
    return cv2.resize(mask.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA) >= 0.5


def _render_chunk(root: Path, spec: PhantomSpec, seed: np.random.SeedSequence, labels: np.ndarray,
                  names: list[str], shortcut: np.ndarray) -> list[tuple]:
    """Render one chunk and write its PNGs (a worker's task); returns its manifest rows."""
    batch = render_batch(np.random.default_rng(seed), labels, spec.source_size, shortcut, spec.shortcut_kind)
    image_png = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    mask_png = [cv2.IMWRITE_PNG_BILEVEL, 1]  # 1-bit PNG: masks hold only 0 / 255
    rows = []
    for j, file_name in enumerate(names):
        class_name = CLASS_NAMES[labels[j]]
        relative = f"{class_name}/images/{file_name}"
        lung = _resize_mask(batch.lungs[j], spec.mask_side)
        lesion = _resize_mask(batch.lesions[j], spec.mask_side) & lung  # evidence stays inside the lungs
        cv2.imwrite(str(root / relative), np.rint(batch.images[j] * 255).astype(np.uint8), image_png)
        cv2.imwrite(str(root / class_name / "masks" / file_name), lung.astype(np.uint8) * 255, mask_png)
        cv2.imwrite(str(root / class_name / "lesions" / file_name), lesion.astype(np.uint8) * 255, mask_png)
        rows.append((relative, class_name, f"{lesion.mean():.5f}", int(shortcut[j])))
    return rows


def generate(spec: PhantomSpec, root: Path, workers: int | None = None) -> None:
    """Render and write the whole dataset into `root` (which must be empty or absent).

    `workers` processes (None: every core) render chunks; each chunk's seed depends only on its
    position, so the files are the same whatever the number of workers.
    """
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
    chunk = spec.chunk_size()
    starts = range(0, len(order), chunk)
    chunk_seeds = np.random.SeedSequence(spec.seed).spawn(len(starts))
    tasks = []
    for seed, start in zip(chunk_seeds, starts):
        picked = order[start:start + chunk]
        names = [f"{CLASS_NAMES[labels[i]]}-{within_class[i]}.png" for i in picked]
        tasks.append((root, spec, seed, labels[picked], names, shortcut[picked]))
    rows = []
    with (chunk_runner(min(worker_count(workers), len(tasks))) as run,
          progress_bar(len(order), "Generating phantom") as advance):
        for chunk_rows in run(_render_chunk, tasks):
            rows.extend(chunk_rows)
            advance(len(chunk_rows))
    rows.sort()
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "class", "lesion_area", "has_shortcut"])
        writer.writerows(rows)
    (root / "phantom.json").write_text(json.dumps({**asdict(spec), "version": GENERATOR_VERSION}, indent=2))


def ensure_phantom(spec: PhantomSpec, root: Path, workers: int | None = None) -> Path:
    """Generate the phantom into `root` unless a complete copy is there; safe across processes."""
    return build_once(root, lambda tmp: _generate_logged(spec, tmp, workers))


def _generate_logged(spec: PhantomSpec, root: Path, workers: int | None) -> None:
    log.info("Generating phantom dataset (%d images, %d px, masks %d px) into %s", spec.num_images,
             spec.source_size, spec.mask_side, root)
    generate(spec, root, workers)
