"""Toy datasets shared by the tests (the tests/ folder is on sys.path through tests/conftest.py)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class QuadrantImages(Dataset):
    """Class k = a bright quadrant k on noise: learnable in a few epochs by a tiny CNN."""

    def __init__(self, count: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(count) % 3
        self.images = 0.3 * torch.randn(count, 1, 16, 16, generator=generator)
        for i, label in enumerate(self.labels.tolist()):
            row, col = divmod(label, 2)
            self.images[i, :, row * 8 : row * 8 + 8, col * 8 : col * 8 + 8] += 1.0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i], "index": torch.tensor(i)}
