"""Checkpoints are read safely: every checkpoint, weights file or artifact goes through
`torch.load(weights_only=True)`, which unpickles only tensors, containers and primitive types; a file that
needs anything more (a pickle that would import a function or class, e.g. to run code on loading) is
refused with one line naming it. heatlens' own checkpoints hold nothing more, so they load.

This module imports no Lightning (only `load_module` does, when called), so that a served model loads
its weights without it; writing checkpoints is `checkpoint_io.AtomicCheckpointIO`, the Trainer's plugin.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

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
    from heatlens.models.module import HeatlensModule  # Lightning, only when called (and no import cycle)

    try:
        return HeatlensModule.load_from_checkpoint(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise refusal(path, what, error) from None
