"""Build a folder exactly once, even when several processes (DDP ranks, sweep jobs) ask at the same time.

The folder is built under a temporary name and renamed into place, so its existence means it is
complete: readers never see a half-written one, and a crashed build leaves only a temporary folder
that the next builder removes.
"""

import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

from filelock import FileLock


def build_once(final: Path, build: Callable[[Path], None]) -> Path:
    """Return `final`, first calling `build(tmp)` and renaming tmp -> final if it does not exist yet."""
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock")):
        if final.exists():  # another process finished while we waited for the lock
            return final
        # Holding the lock, no other builder of this folder is alive: leftovers are from crashes.
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            build(tmp)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final
