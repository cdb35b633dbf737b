"""Crafted files for the safety tests: a checkpoint whose unpickling runs code (it creates a marker file)."""

from __future__ import annotations

import os
from pathlib import Path

import torch


class Payload:
    """Unpickled without weights_only, this calls os.system: the pickle `__reduce__` attack."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_checkpoint(path: Path, marker: Path, base: dict | None = None) -> Path:
    """`base` (a real checkpoint dict, or a bare one) with the payload added under a harmless key."""
    torch.save({**(base or {"state_dict": {}, "epoch": 0}), "extra": Payload(marker)}, path)
    return path
