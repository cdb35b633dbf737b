"""Decoded cache: every image and mask decoded and resized once into memory-mapped uint8 arrays.

Keyed by the file list, sizes and modification times, the image size and channels, so editing,
adding or removing a file builds a new cache. Built under a lock into a temporary folder and
renamed into place (see `atomic`): concurrent builders never corrupt it, readers never see half of it.
"""

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap
from tqdm.auto import tqdm

from heatlens.data.atomic import build_once
from heatlens.data.decode import Source, load_image, load_mask
from heatlens.data.errors import DataError
from heatlens.data.samples import Sample

log = logging.getLogger(__name__)

# Bump when the decoding changes so old caches are not reused.
CACHE_VERSION = 1


@dataclass(frozen=True)
class CacheInfo:
    folder: Path
    ids: list[str]  # ids of the decoded samples, in row order
    skipped: list[dict[str, str]]  # {"file": ..., "error": ...} for images left out (on_bad_image=skip)

    def images(self) -> np.ndarray:
        """(N, H, W, C) uint8, memory-mapped read-only."""
        return np.load(self.folder / "images.npy", mmap_mode="r")

    def masks(self) -> np.ndarray | None:
        """(N, K, H, W) uint8 in {0, 1}, memory-mapped; None when there are no mask kinds."""
        path = self.folder / "masks.npy"
        return np.load(path, mmap_mode="r") if path.exists() else None


def _fingerprint(source: Source | None) -> list:
    if source is None:
        return [None]
    try:
        stat = source.path.stat()
        return [str(source), stat.st_size, stat.st_mtime_ns]
    except OSError:
        return [str(source), -1, -1]  # missing: decoding reports it (or skips it) by name


def cache_key(samples: list[Sample], mask_kinds: list[str], size: int, channels: int) -> str:
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, size, channels, mask_kinds]).encode())
    for sample in samples:
        masks = [part for kind in mask_kinds for part in _fingerprint(sample.masks.get(kind))]
        entry = [sample.id, *_fingerprint(sample.image), *masks]
        digest.update(json.dumps(entry).encode())
    return digest.hexdigest()[:24]


def _decode(sample: Sample, mask_kinds: list[str], size: int, channels: int):
    try:
        image = load_image(sample.image, size, channels)
        masks = [load_mask(sample.masks[k], size) if k in sample.masks else None for k in mask_kinds]
        return image, masks
    except DataError as error:
        return error


def _build(folder: Path, samples: list[Sample], mask_kinds: list[str], size: int, channels: int,
           on_bad_image: str) -> None:
    n = len(samples)
    images = open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(n, size, size, channels))
    masks = (open_memmap(folder / "masks.npy", mode="w+", dtype=np.uint8, shape=(n, len(mask_kinds), size, size))
             if mask_kinds else None)
    kept: list[str] = []
    skipped: list[dict[str, str]] = []
    # OpenCV releases the GIL while decoding, so threads overlap file reads and decodes.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = pool.map(lambda s: _decode(s, mask_kinds, size, channels), samples)
        for sample, result in tqdm(zip(samples, results), total=n, desc="Decoding images", unit="img"):
            if isinstance(result, DataError):
                if on_bad_image != "skip":
                    raise result
                skipped.append({"file": str(sample.image.path), "error": str(result)})
                continue
            row = len(kept)
            images[row] = result[0]
            if masks is not None:
                for k, mask in enumerate(result[1]):
                    masks[row, k] = 0 if mask is None else mask
            kept.append(sample.id)
    if not kept:
        raise DataError(f"every image was bad, nothing left (first: {skipped[0]['file']}: {skipped[0]['error']})")
    images.flush()
    if masks is not None:
        masks.flush()
    if skipped:
        _truncate(folder / "images.npy", len(kept))
        if masks is not None:
            _truncate(folder / "masks.npy", len(kept))
    meta = {"ids": kept, "skipped": skipped, "image_size": size, "channels": channels, "mask_kinds": mask_kinds}
    (folder / "meta.json").write_text(json.dumps(meta))


def _truncate(path: Path, rows: int) -> None:
    full = np.load(path, mmap_mode="r")
    kept = open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=full.dtype, shape=(rows, *full.shape[1:]))
    kept[:] = full[:rows]
    kept.flush()
    del full, kept
    os.replace(path.with_suffix(".tmp.npy"), path)


def ensure_cache(samples: list[Sample], mask_kinds: list[str], size: int, channels: int, on_bad_image: str,
                 cache_root: Path) -> CacheInfo:
    """Open the decoded cache of these samples, building it first if needed (safe across processes)."""
    if not samples:
        raise DataError("dataset has no images")
    folder = cache_root / cache_key(samples, mask_kinds, size, channels)
    build_once(folder, lambda tmp: _build(tmp, samples, mask_kinds, size, channels, on_bad_image))
    meta = json.loads((folder / "meta.json").read_text())
    if meta["skipped"] and on_bad_image != "skip":
        first = meta["skipped"][0]
        raise DataError(f"{first['file']}: {first['error']} ({len(meta['skipped'])} bad image(s); "
                        "set data.on_bad_image=skip to leave them out)")
    if meta["skipped"]:
        log.warning("Skipped %d bad image(s) (data.on_bad_image=skip): %s", len(meta["skipped"]),
                    "; ".join(f"{s['file']} ({s['error']})" for s in meta["skipped"]))
    return CacheInfo(folder, meta["ids"], meta["skipped"])
