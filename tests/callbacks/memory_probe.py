"""`python memory_probe.py N`: peak-RSS growth (MiB) of explaining N generated 256 px images.

Run as a subprocess by test_sample.py, so each measurement starts from a fresh process. Images are
made on the fly (the dataset holds none), so what grows with N is what the explanation keeps.
"""

from __future__ import annotations

import resource
import sys

import numpy as np
import torch
from explain_models import TinyConvNet
from torch.utils.data import DataLoader, Dataset

from heatlens.callbacks import ExplainedSample

SIDE = 256


class GeneratedImages(Dataset):
    mask_kinds = ["lung"]

    def __init__(self, count: int) -> None:
        self.labels = np.arange(count) % 3
        self.ids = [f"image{i:05d}" for i in range(count)]
        self.mask = torch.zeros(1, SIDE, SIDE, dtype=torch.uint8)
        self.mask[:, :, : SIDE // 2] = 1

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        image = torch.randn(1, SIDE, SIDE, generator=torch.Generator().manual_seed(index))
        return {"image": image, "label": torch.tensor(self.labels[index]), "index": torch.tensor(index),
                "masks": {"lung": self.mask}}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(count: int) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = TinyConvNet(width=4, blocks=4).eval()  # 256 px -> 16 x 16 maps, as backbones at 224 px give 7 x 7
    loader = DataLoader(GeneratedImages(count), batch_size=32)
    ExplainedSample.from_loader(net, DataLoader(GeneratedImages(64), batch_size=32), ["a", "b", "c"], ["lung"],
                                None, "stratified").gathered_cams()  # warm-up: allocator pools, lazy imports
    before = peak_mib()
    sample = ExplainedSample.from_loader(net, loader, ["a", "b", "c"], ["lung"], None, "stratified")
    rows = sample.gathered_cams()
    streamed = sum(float(batch.images.mean()) for batch in sample.batches("stream"))  # a second full pass
    assert len(rows.index) == count and np.isfinite(streamed)
    print(f"{peak_mib() - before:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]))
