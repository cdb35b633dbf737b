"""`python -m heatlens.bench.scale_prepare [--compare N R] OVERRIDE...`: the data phases of the `scale` bench.

Composes the training config from the overrides as `python train.py OVERRIDE...` would, then, through
the DataModule, generates the phantom (`generate_*` marks) and builds the decode cache (`cache_*`
marks): the same phantom folder and cache that the training job then opens. With `--compare N R`
it afterwards builds the cache of the first N images R times with one and with two processes,
alternately (the order flips each round, so drift on a shared machine hits both), each into a fresh
folder, checks that both give the same arrays, and marks the times (`compare`).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from heatlens.bench.scale_probe import mark
from heatlens.data import build_datamodule
from heatlens.data.cache import CacheInfo, ensure_cache
from heatlens.data.datamodule import HeatlensDataModule
from heatlens.paths import CONFIG_DIR, cache_dir


def _digest(cache: CacheInfo) -> str:
    digest = hashlib.sha256()
    for path in sorted(cache.folder.glob("*.npy")):
        with open(path, "rb") as f:
            while block := f.read(1 << 24):
                digest.update(block)
    return digest.hexdigest()


def prepare(datamodule: HeatlensDataModule) -> None:
    mark("generate_start")
    samples = datamodule.listing().samples
    mark("generate_end", images=len(samples))
    mark("cache_start")
    datamodule.prepare_data()
    mark("cache_built")
    datamodule.setup("fit")  # opens the cache just built (its key is computed again) and splits it
    cache = datamodule.train_dataset.cache
    size = sum(path.stat().st_size for path in cache.folder.glob("*.npy"))
    mark("cache_end", images=len(cache.ids), bytes=size, folder=str(cache.folder.relative_to(cache_dir())))


def compare_workers(datamodule: HeatlensDataModule, images: int, rounds: int) -> None:
    """Cache build of the first `images` samples with 1 and 2 processes, alternately, `rounds` times each."""
    listing, settings = datamodule.listing(), datamodule.settings
    samples = listing.samples[:images]
    seconds: dict[int, list[float]] = {1: [], 2: []}
    digests = set()
    with tempfile.TemporaryDirectory(prefix="compare-", dir=cache_dir()) as tmp:
        for round_ in range(rounds):
            for workers in (1, 2) if round_ % 2 == 0 else (2, 1):
                root = Path(tmp) / f"{workers}-{round_}"
                start = time.perf_counter()
                cache = ensure_cache(samples, listing.mask_kinds, settings.decode_options(), settings.on_bad_image,
                                     root, workers=workers)
                seconds[workers].append(time.perf_counter() - start)
                digests.add(_digest(cache))
                shutil.rmtree(root)
    if len(digests) != 1:
        raise RuntimeError("the cache built with 1 and with 2 processes differ")
    mark("compare", images=len(samples), seconds_1=seconds[1], seconds_2=seconds[2])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m heatlens.bench.scale_prepare", description=__doc__)
    parser.add_argument("--compare", nargs=2, type=int, metavar=("N", "R"),
                        help="also time the cache build of N images with 1 vs 2 processes, R rounds")
    parser.add_argument("overrides", nargs="*", help="training overrides (data.*)")
    args = parser.parse_args(argv)
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=args.overrides)
    datamodule = build_datamodule(cfg.data, seed=cfg.seed)
    prepare(datamodule)
    if args.compare:
        compare_workers(datamodule, *args.compare)


if __name__ == "__main__":
    main()
