"""Checkpoints are read safely and written atomically.

Reading: every checkpoint, weights file or artifact goes through `torch.load(weights_only=True)`, which
unpickles only tensors, containers and primitive types; a file that needs anything more (a pickle that
would import a function or class, e.g. to run code on loading) is refused with one line naming it.
heatlens' own checkpoints hold nothing more, so they load.

Writing: `AtomicCheckpointIO` is the Trainer's `CheckpointIO` plugin: Lightning's checkpoints are
written to a temporary file beside the final one and renamed into place, so a full disk or a crash
leaves the previous checkpoint (or none), never a truncated one.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from heatlens.data.atomic import write_with
from heatlens.models.errors import ModelConfigError

if TYPE_CHECKING:
    from heatlens.models.module import HeatlensModule


class UnsafeCheckpointError(ModelConfigError):
    """A file that `torch.load(weights_only=True)` refuses: loading it could run code."""


def refusal(path: str | Path, what: str, error: Exception) -> UnsafeCheckpointError:
    found = re.search(r"GLOBAL (\S+)", str(error))
    detail = f" (it would import {found.group(1)})" if found else ""
    return UnsafeCheckpointError(
        f"{what}={path} refused: it holds Python objects beyond tensors{detail}, which could run code when "
        f"loaded; heatlens loads only weights_only checkpoints (re-save it with torch.save(state_dict))"
    )


def load_checkpoint(path: str | Path, what: str, *, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint dict at `path` on the CPU, read with weights_only=True; `what` names the config key
    or source the path came from (for the one-line refusal)."""
    try:
        return torch.load(str(path), map_location="cpu", mmap=mmap, weights_only=True)
    except pickle.UnpicklingError as error:
        raise refusal(path, what, error) from None


def load_module(path: str | Path, what: str) -> HeatlensModule:
    """A HeatlensModule from a checkpoint, read with weights_only=True."""
    from heatlens.models.module import HeatlensModule  # net.py imports this module: no cycle at import

    try:
        return HeatlensModule.load_from_checkpoint(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise refusal(path, what, error) from None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, writing through a temporary file and reading with weights_only=True."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        write_with(Path(path), lambda tmp: super(AtomicCheckpointIO, self).save_checkpoint(
            checkpoint, tmp, storage_options), "checkpoint")

    def load_checkpoint(self, path: Any, map_location: Any | None = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path, "ckpt_path")
