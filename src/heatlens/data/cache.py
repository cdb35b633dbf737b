"""Decoded cache: every image and mask decoded and resized once into memory-mapped uint8 arrays.

Keyed by the file list, sizes and modification times and by every option that changes decoded
pixels (`DecodeOptions`), so editing, adding or removing a file builds a new cache. Built under a
lock into a temporary folder and renamed into place (see `atomic`): concurrent builders never
corrupt it, readers never see half of it. Worker processes decode chunks of samples and write their
rows straight into the memory-mapped arrays, so no process holds more than a chunk of images.
"""

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from heatlens.data.atomic import build_once
from heatlens.data.decode import DecodeOptions, Source, decode_sample
from heatlens.data.errors import DataError
from heatlens.data.parallel import chunk_runner, worker_count
from heatlens.data.samples import Sample
from heatlens.progress import progress_bar

log = logging.getLogger(__name__)

# Bump when the decoding changes so old caches are not reused.
CACHE_VERSION = 2
_CHUNK = 32  # samples per task: small enough to balance the workers, large enough to amortise a task
_COPY_BYTES = 64 << 20  # rows moved at a time when bad rows are dropped


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


def cache_key(samples: list[Sample], mask_kinds: list[str], options: DecodeOptions) -> str:
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, asdict(options), mask_kinds], sort_keys=True).encode())
    for sample in samples:
        masks = [part for kind in mask_kinds for part in _fingerprint(sample.masks.get(kind))]
        entry = [sample.id, *_fingerprint(sample.image), *masks]
        digest.update(json.dumps(entry).encode())
    return digest.hexdigest()[:24]


def _decode_chunk(folder: Path, start: int, samples: list[Sample], mask_kinds: list[str],
                  options: DecodeOptions) -> list[dict[str, str | int]]:
    """Decode samples [start, start + len) into their rows of the arrays; returns the bad ones."""
    images = np.load(folder / "images.npy", mmap_mode="r+")
    masks = np.load(folder / "masks.npy", mmap_mode="r+") if mask_kinds else None
    bad = []
    for row, sample in enumerate(samples, start):
        try:
            image, sample_masks = decode_sample(sample.image, [sample.masks.get(k) for k in mask_kinds], options)
        except DataError as error:
            bad.append({"row": row, "file": str(sample.image.path), "error": str(error)})
            continue
        images[row] = image
        for k, mask in enumerate(sample_masks):
            masks[row, k] = 0 if mask is None else mask
    return bad


def _drop_rows(path: Path, bad_rows: set[int]) -> None:
    """Rewrite a .npy without `bad_rows`, a bounded number of rows at a time."""
    full = np.load(path, mmap_mode="r")
    kept_rows = np.array([r for r in range(len(full)) if r not in bad_rows], dtype=np.int64)
    kept = open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=full.dtype,
                       shape=(len(kept_rows), *full.shape[1:]))
    step = max(1, _COPY_BYTES // max(1, full[0].nbytes))
    for start in range(0, len(kept_rows), step):
        kept[start:start + step] = full[kept_rows[start:start + step]]
    kept.flush()
    del full, kept
    os.replace(path.with_suffix(".tmp.npy"), path)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:  # the workers wrote through their own maps: one sync for all of it
        os.fsync(f.fileno())


def _build(folder: Path, samples: list[Sample], mask_kinds: list[str], options: DecodeOptions,
           on_bad_image: str, workers: int) -> None:
    n, size = len(samples), options.size
    arrays = [folder / "images.npy"]
    open_memmap(arrays[0], mode="w+", dtype=np.uint8, shape=(n, size, size, options.channels))
    if mask_kinds:
        arrays.append(folder / "masks.npy")
        open_memmap(arrays[1], mode="w+", dtype=np.uint8, shape=(n, len(mask_kinds), size, size))
    tasks = [(folder, start, samples[start:start + _CHUNK], mask_kinds, options) for start in range(0, n, _CHUNK)]
    skipped: list[dict] = []
    with chunk_runner(min(workers, len(tasks))) as run, progress_bar(n, "Decoding images") as advance:
        for task, bad in zip(tasks, run(_decode_chunk, tasks)):
            if bad and on_bad_image != "skip":
                raise DataError(f"{bad[0]['error']} (set data.on_bad_image=skip to leave bad files out)")
            skipped.extend(bad)
            advance(len(task[2]))
    if len(skipped) == n:
        raise DataError(f"every image was bad, nothing left (first: {skipped[0]['error']})")
    for path in arrays:
        _fsync(path)
        if skipped:
            _drop_rows(path, {s["row"] for s in skipped})
    bad_rows = {s["row"] for s in skipped}
    kept = [s.id for row, s in enumerate(samples) if row not in bad_rows]
    skipped = [{"file": s["file"], "error": s["error"]} for s in skipped]
    meta = {"ids": kept, "skipped": skipped, "options": asdict(options), "mask_kinds": mask_kinds}
    (folder / "meta.json").write_text(json.dumps(meta))


def ensure_cache(samples: list[Sample], mask_kinds: list[str], options: DecodeOptions, on_bad_image: str,
                 cache_root: Path, workers: int | None = None) -> CacheInfo:
    """Open the decoded cache of these samples, building it first if needed (safe across processes).

    `workers`: decoding processes (None: every core). Under on_bad_image=error the first bad file
    stops the build; under skip it is left out and listed in `CacheInfo.skipped`.
    """
    if not samples:
        raise DataError("dataset has no images")
    count = worker_count(workers)
    folder = cache_root / cache_key(samples, mask_kinds, options)
    build_once(folder, lambda tmp: _build(tmp, samples, mask_kinds, options, on_bad_image, count))
    meta = json.loads((folder / "meta.json").read_text())
    if meta["skipped"] and on_bad_image != "skip":
        raise DataError(f"{meta['skipped'][0]['error']} ({len(meta['skipped'])} bad file(s); "
                        "set data.on_bad_image=skip to leave them out)")
    if meta["skipped"]:
        log.warning("Skipped %d bad image(s) (data.on_bad_image=skip): %s", len(meta["skipped"]),
                    "; ".join(s["error"] for s in meta["skipped"]))
    return CacheInfo(folder, meta["ids"], meta["skipped"])
