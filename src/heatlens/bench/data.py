"""Data benchmark, measured side by side in one run on the same phantom images and DataLoader settings.

cache_vs_png   an epoch decoding every PNG (image + lung + lesion masks, resized to 224 px) / an epoch
               read from the decoded memory-mapped cache; same evaluation transform, batch size and
               num_workers. The result line also says whether the cached loader keeps up with a
               simple_cnn forward pass at that size (loader img/s vs model img/s).
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from heatlens.bench.common import BenchResult, best_time
from heatlens.data import build_datamodule
from heatlens.data.decode import DecodeOptions, decode_sample
from heatlens.data.samples import Sample
from heatlens.models import build_model

SIZE = 224
BATCH = 32


class DecodeEachTime(Dataset):
    """The reference: decode the files on every access, then the same transform as the cached set."""

    def __init__(self, samples: list[Sample], mask_kinds: list[str], channels: int, transform) -> None:
        self.samples, self.mask_kinds, self.transform = samples, mask_kinds, transform
        self.options = DecodeOptions(SIZE, channels)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image, masks = decode_sample(sample.image, [sample.masks[k] for k in self.mask_kinds], self.options)
        out = self.transform(image=image, masks=masks)
        return {"image": out["image"], "index": torch.tensor(index),
                "masks": {k: torch.as_tensor(np.asarray(m))[None] for k, m in zip(self.mask_kinds, out["masks"])}}


def _epoch(loader: DataLoader) -> None:
    for _ in loader:
        pass


def _forward_rate(channels: int, repeats: int) -> float:
    """Images per second of a simple_cnn eval forward at SIZE px (CPU threads as configured)."""
    net = build_model({"name": "simple_cnn", "width": 16}, {"name": "timm"}, num_classes=4, in_chans=channels).eval()
    batch = torch.randn(BATCH, channels, SIZE, SIZE)
    with torch.no_grad():
        return BATCH / best_time(lambda: net(batch), repeats=repeats)


def run(quick: bool) -> list[BenchResult]:
    num_images = 64 if quick else 512
    workers = 0 if quick else 2
    repeats = 1 if quick else 3
    cfg = {"name": "phantom", "num_images": num_images, "source_size": 256, "image_size": SIZE,
           "batch_size": BATCH, "num_workers": workers, "augment": {}, "split": [0.5, 0.25, 0.25]}
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup()
    cached = dm.train_dataset
    by_id = {s.id: s for s in dm.listing().samples}
    reference = DecodeEachTime([by_id[i] for i in cached.ids], dm.mask_kinds, dm.channels,
                               dm.val_dataset.transform)
    cached.transform = dm.val_dataset.transform  # same (deterministic) transform on both sides

    def loader(dataset: Dataset) -> DataLoader:
        return DataLoader(dataset, batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0)

    cache_loader, png_loader = loader(cached), loader(reference)
    cache_s = best_time(lambda: _epoch(cache_loader), repeats=repeats)
    png_s = best_time(lambda: _epoch(png_loader), repeats=repeats)
    n = len(cached)
    loader_rate = n / cache_s
    model_rate = _forward_rate(dm.channels, repeats)
    keeps_up = "keeps up with" if loader_rate >= model_rate else "starves"
    return [BenchResult(
        key="cache_vs_png",
        ratio=png_s / cache_s,
        ours=f"cache {loader_rate:.0f} img/s; {keeps_up} simple_cnn forward ({model_rate:.0f} img/s)",
        reference=f"PNG decode {n / png_s:.0f} img/s",
        setting=f"CPU, {n} phantom images {SIZE}px + 2 masks, batch {BATCH}, num_workers={workers}",
    )]
