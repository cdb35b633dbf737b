"""Atomic writes: a file or folder exists under its final name only once it is complete.

`build_once` builds a folder exactly once, even when several processes (DDP ranks, sweep jobs) ask at
the same time; `atomic_path` / `write_text_atomic` write one file. Both write under a temporary name in
the same folder and rename into place (`os.replace`, atomic on POSIX file systems), so readers never see
a half-written file: a crash or a full disk leaves the previous good file (or none) and at most a
temporary leftover that the next writer removes.
"""

import errno
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from heatlens.data.errors import DataError

TMP_MARK = ".tmp-"


class WriteError(DataError):
    """A file could not be written (full disk, read-only folder, file size limit): the message names
    the path and what was being written; the previous file, if any, is untouched."""


def _reason(error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device"
    if error.errno == errno.EFBIG:
        return "file size limit reached"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the folder is not writable"
    return error.strerror or type(error).__name__


@contextmanager
def atomic_path(final: str | Path, what: str) -> Iterator[Path]:
    """Yield a temporary path beside `final` to write `what` to; on success it is flushed to disk and
    renamed to `final`. Any OSError becomes one `WriteError` line; the temporary file is removed."""
    final = Path(final)
    # The suffix is kept: savers such as matplotlib's pick the format from it.
    tmp = final.parent / f".{final.stem}{TMP_MARK}{uuid.uuid4().hex}{final.suffix}"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data is on disk before the name points at it (power loss)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except OSError as error:
        raise WriteError(f"could not write {what} {final}: {_reason(error)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(final: str | Path, text: str, what: str) -> Path:
    """Write `text` (UTF-8) to `final` atomically; returns `final`."""
    with atomic_path(final, what) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(final)


def write_with(final: str | Path, write: Callable[[Path], object], what: str) -> Path:
    """`write(tmp)` writes the file (a library's save function), then it is moved to `final` atomically."""
    with atomic_path(final, what) as tmp:
        write(tmp)
    return Path(final)


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link costs nothing and keeps the bytes even if the source is later replaced; else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


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
