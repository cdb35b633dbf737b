"""Checkpoints are written atomically: `AtomicCheckpointIO` is the Trainer's `CheckpointIO` plugin.
Lightning's checkpoints are written to a temporary file beside the final one and renamed into place, so a
full disk or a crash leaves the previous checkpoint (or none), never a truncated one. When several
monitors improve in the same epoch, their weights-only checkpoints are the same bytes: each after the
first becomes a hard link to the file written with those bytes instead of another copy (a ViT-S/16 run
wrote six identical 86 MB files). Every write renames a new file into place, so replacing one linked
name later leaves the others as they were. Reading goes through `checkpoint_read` (weights_only=True).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from heatlens.data.atomic import link_or_copy, write_with
from heatlens.models.checkpoint_read import load_checkpoint


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """(device, inode, size, mtime in ns) of the file at `path`; None if there is none."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


@dataclass(frozen=True)
class _Written:
    """A checkpoint file this plugin wrote, and the file's identity then."""

    path: Path
    identity: tuple[int, int, int, int] | None

    def still_there(self) -> bool:
        return self.identity is not None and _identity(self.path) == self.identity


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, writing through a temporary file (a hard link to an earlier file of
    the same bytes) and reading with weights_only=True."""

    def __init__(self) -> None:
        super().__init__()
        self._written: dict[str, _Written] = {}  # SHA-256 of the bytes -> the last file written with them

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} writes local files: storage_options is not supported")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # what Lightning's own save does before it writes the bytes
        data = buffer.getbuffer()
        digest = hashlib.sha256(data).hexdigest()
        earlier = self._written.get(digest)
        final = write_with(Path(path), lambda tmp: _link_or_write(tmp, data, earlier), "checkpoint")
        self._written[digest] = _Written(final, _identity(final))

    def load_checkpoint(self, path: Any, map_location: Any | None = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path, "ckpt_path")


def _link_or_write(tmp: Path, data: memoryview, same: _Written | None) -> None:
    """`tmp` becomes a hard link to `same` (the file of these bytes, if it is still the one written), else
    the bytes are written."""
    if same is not None and same.still_there():
        link_or_copy(same.path, tmp)
        return
    with open(tmp, "wb") as out:
        out.write(data)
