"""Multi-label phantom (`data=phantom data.task=multilabel`): each finding drawn independently per image.

Findings are the phantom's disease patterns (COVID ground glass, Lung_Opacity consolidation, Viral
Pneumonia reticular net), so an image may show none, one or several, each with its own lesion mask.
Layout: `<root>/images/<id>.png`, `<root>/masks/<id>.png` (lungs), `<root>/lesions/<finding>/<id>.png`
(written for positive findings only: absent = empty) and `manifest.csv` with one 0/1 column per finding.
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
from heatlens.data.decode import Source
from heatlens.data.errors import DataError
from heatlens.data.parallel import chunk_runner, worker_count
from heatlens.data.phantom import _resize_mask
from heatlens.data.phantom_render import (
    _anatomy,
    _covid,
    _neutralise,
    _opacity,
    _posed_grid,
    _reticular,
    _subset,
    _uniform,
)
from heatlens.data.samples import Listing, Sample, require_folder
from heatlens.progress import progress_bar

log = logging.getLogger(__name__)

FINDINGS = ("COVID", "Lung_Opacity", "Viral Pneumonia")
DEFAULT_PREVALENCE = (0.3, 0.3, 0.3)
GENERATOR_VERSION = 3
# Beside other findings the single-label phantom's faint ground glass is learnt slowly (test AUROC 0.73
# after 3 epochs of simple_cnn at 64 px, the others 0.99): drawn this much stronger here.
COVID_GAIN = 1.6
_CHUNK_PIXELS = 128 * 128 * 128
_MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class MultilabelPhantomSpec:
    num_images: int = 2000
    source_size: int = 128
    seed: int = 0
    prevalence: tuple[float, ...] = DEFAULT_PREVALENCE  # P(finding) per image, independent of the others
    shortcut_fraction: float = 0.0  # share of shortcut_finding's positive images carrying the corner marker
    shortcut_finding: str = "COVID"
    mask_size: int | None = None

    def __post_init__(self) -> None:
        if self.num_images < 4:
            raise DataError(f"data.num_images={self.num_images}: need at least 4")
        if self.source_size < 32:
            raise DataError(f"data.source_size={self.source_size}: the phantom needs at least 32 px")
        if self.mask_size is not None and self.mask_size < 8:
            raise DataError(f"data.mask_size={self.mask_size}: expected at least 8 px, or null (= data.source_size)")
        if len(self.prevalence) != len(FINDINGS) or not all(0.0 < p < 1.0 for p in self.prevalence):
            raise DataError(f"data.finding_prevalence={list(self.prevalence)}: need {len(FINDINGS)} numbers in "
                            f"(0, 1), one per finding {list(FINDINGS)}")
        if not 0.0 <= self.shortcut_fraction <= 1.0:
            raise DataError(f"data.shortcut.fraction={self.shortcut_fraction}: must be within [0, 1]")
        if self.shortcut_finding not in FINDINGS:
            raise DataError(f"data.shortcut.class_name={self.shortcut_finding!r}: not one of the findings "
                            f"{list(FINDINGS)}")

    def key(self) -> str:
        payload = json.dumps({**asdict(self), "task": "multilabel", "version": GENERATOR_VERSION}, sort_keys=True)
        return "ml-" + hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def mask_side(self) -> int:
        return self.mask_size or self.source_size

    def chunk_size(self) -> int:
        return int(min(128, max(8, _CHUNK_PIXELS // self.source_size**2)))


def _reticular_in_lungs(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, lungs: np.ndarray,
                        size: int) -> tuple[np.ndarray, np.ndarray]:
    """The reticular net, redrawn (a few times at most) where its patchy envelope misses the lungs
    (about 1 % of draws): a positive finding must show, and have a lesion mask."""
    intensity, envelope = _reticular(rng, x, y, len(x), size)
    for _ in range(5):
        missed = ~np.any(lungs & (envelope > 0.5), axis=(1, 2))
        if not missed.any():
            break
        intensity[missed], envelope[missed] = _reticular(rng, x[missed], y[missed], int(missed.sum()), size)
    return intensity, envelope


def render_findings(rng: np.random.Generator, findings: np.ndarray, size: int,
                    shortcut: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, K) bool findings -> images (B, S, S) in [0, 1], lungs (B, S, S) bool, lesions (B, K, S, S) bool."""
    n = len(findings)
    x, y = _posed_grid(rng, n, size)
    image, air, lungs = _anatomy(rng, x, y, n, size)
    lung_mask = air > 0.5
    lesions = np.zeros((n, len(FINDINGS), size, size), dtype=bool)
    added = np.zeros_like(image)
    for k, draw in enumerate((_covid, _opacity, None)):
        chosen = findings[:, k]
        if not chosen.any():
            continue
        if draw is None:
            intensity, envelope = _reticular_in_lungs(rng, x[chosen], y[chosen], lung_mask[chosen], size)
        else:
            chosen_lungs = [_subset(lung, chosen) for lung in lungs]
            intensity, envelope = draw(rng, x[chosen], y[chosen], chosen_lungs, int(chosen.sum()), size)
        added[chosen] += intensity * (COVID_GAIN if k == 0 else 1.0)
        lesions[chosen, k] = lung_mask[chosen] & (envelope > 0.5)
    image = image + added * air
    image = image + rng.standard_normal(image.shape, dtype=np.float32) * _uniform(rng, 0.01, 0.025, n)
    image = _neutralise(image, rng)
    marker, start = max(2, size // 16), max(1, size // 32)
    image[shortcut, start:start + marker, start:start + marker] = 1.0
    return image, lung_mask, lesions


def _render_chunk(root: Path, spec: MultilabelPhantomSpec, seed: np.random.SeedSequence, findings: np.ndarray,
                  names: list[str], shortcut: np.ndarray) -> list[tuple]:
    images, lungs, lesions = render_findings(np.random.default_rng(seed), findings, spec.source_size, shortcut)
    rows = []
    for j, name in enumerate(names):
        lung = _resize_mask(lungs[j], spec.mask_side)
        cv2.imwrite(str(root / "images" / name), np.rint(images[j] * 255).astype(np.uint8),
                    [cv2.IMWRITE_PNG_COMPRESSION, 1])
        cv2.imwrite(str(root / "masks" / name), lung.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1])
        for k, finding in enumerate(FINDINGS):
            if findings[j, k]:
                lesion = _resize_mask(lesions[j, k], spec.mask_side) & lung
                cv2.imwrite(str(root / "lesions" / finding / name), lesion.astype(np.uint8) * 255,
                            [cv2.IMWRITE_PNG_BILEVEL, 1])
        rows.append((f"images/{name}", *(int(v) for v in findings[j]), int(shortcut[j])))
    return rows


def generate_multilabel(spec: MultilabelPhantomSpec, root: Path, workers: int | None = None) -> None:
    """Write the dataset into `root`; each chunk's seed depends only on its position (any worker count)."""
    rng = np.random.default_rng(spec.seed)
    findings = rng.random((spec.num_images, len(FINDINGS))) < np.asarray(spec.prevalence)
    shortcut = np.zeros(spec.num_images, dtype=bool)
    carriers = np.flatnonzero(findings[:, FINDINGS.index(spec.shortcut_finding)])
    shortcut[rng.choice(carriers, size=round(spec.shortcut_fraction * len(carriers)), replace=False)] = True
    for sub in ("images", "masks", *(f"lesions/{f}" for f in FINDINGS)):
        (root / sub).mkdir(parents=True, exist_ok=True)
    chunk = spec.chunk_size()
    starts = range(0, spec.num_images, chunk)
    tasks = [(root, spec, seed, findings[s:s + chunk], [f"phantom-{i:05d}.png" for i in range(s, s + chunk)
                                                         if i < spec.num_images], shortcut[s:s + chunk])
             for seed, s in zip(np.random.SeedSequence(spec.seed).spawn(len(starts)), starts)]
    rows = []
    with (chunk_runner(min(worker_count(workers), len(tasks))) as run,
          progress_bar(spec.num_images, "Generating multi-label phantom") as advance):
        for chunk_rows in run(_render_chunk, tasks):
            rows.extend(chunk_rows)
            advance(len(chunk_rows))
    with open(root / _MANIFEST, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", *FINDINGS, "has_shortcut"])
        writer.writerows(rows)
    (root / "phantom.json").write_text(json.dumps({**asdict(spec), "version": GENERATOR_VERSION}, indent=2))


def ensure_multilabel_phantom(spec: MultilabelPhantomSpec, root: Path, workers: int | None = None) -> Path:
    def build(tmp: Path) -> None:
        log.info("Generating multi-label phantom (%d images, %d px) into %s", spec.num_images, spec.source_size, tmp)
        generate_multilabel(spec, tmp, workers)
    return build_once(root, build)


def list_multilabel_phantom(root: Path) -> Listing:
    """Samples of a generated multi-label phantom: targets from the manifest, lung + per-finding lesion masks."""
    require_folder(root, "data.root")
    manifest = root / _MANIFEST
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or any(name not in rows[0] for name in FINDINGS):
        raise DataError(f"{manifest}: not a multi-label phantom manifest (columns path, {', '.join(FINDINGS)})")
    samples = []
    for row in rows:
        name = Path(row["path"]).name
        targets = tuple(float(row[finding]) for finding in FINDINGS)
        masks = {"lung": Source(root / "masks" / name)}
        for finding, value in zip(FINDINGS, targets):
            if value == 1.0:
                masks[f"lesion/{finding}"] = Source(root / "lesions" / finding / name)
        label = "|".join(f for f, v in zip(FINDINGS, targets) if v == 1.0)
        samples.append(Sample(row["path"], Source(root / row["path"]), label, masks, targets=targets))
    return Listing(samples, list(FINDINGS), ["lung", "lesion"], task="multilabel", per_finding=["lesion"])
