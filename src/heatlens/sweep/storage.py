"""Where a study lives: an Optuna journal file (default; safe on shared file systems) or a database URL.

`hydra.sweeper.storage`:
- null: `optuna.journal` in the folder of the MLflow store (the caller passes that folder);
- a file path: that journal file (every worker of a SLURM array may append to it over NFS);
- `sqlite:///path.db`: an Optuna RDB file (one machine; SQLite locks break on NFS);
- `postgresql://...`, `mysql+pymysql://...`: a database server (many machines, no shared disk).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from heatlens.sweep.errors import SweepConfigError

JOURNAL_FILE = "optuna.journal"
# Seconds SQLite waits for a concurrent writer before "database is locked".
SQLITE_TIMEOUT_S = 60
# Seconds after which the budget lock of a killed worker is broken (held for well under a second).
LOCK_GRACE_S = 30


@dataclass(frozen=True)
class StudyStorage:
    """A resolved storage: `spec` is what every job of the sweep is given to reach the same study."""

    spec: str

    @property
    def is_url(self) -> bool:
        return "://" in self.spec

    @property
    def local_file(self) -> Path | None:
        """The journal or SQLite file, None for a database server."""
        if not self.is_url:
            return Path(self.spec)
        if self.spec.startswith("sqlite:///"):
            from sqlalchemy.engine import make_url  # database URLs only: a journal file needs no SQLAlchemy

            return Path(make_url(self.spec).database)
        return None

    def open(self) -> BaseStorage:
        try:
            if not self.is_url:
                return JournalStorage(JournalFileBackend(self.spec))
            engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if self.spec.startswith("sqlite") else None
            return RDBStorage(self.spec, engine_kwargs=engine_kwargs)
        except (ImportError, ValueError, OSError, optuna.exceptions.StorageInternalError) as err:
            raise SweepConfigError(f"hydra.sweeper.storage={self.spec}: Optuna cannot use it: {err}") from None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held while a worker counts the study's trials and asks for new ones, so that workers
        sharing the study never run more trials than `n_trials` between them.

        The symlink lock is Optuna's own NFS-safe journal lock, on a file of its own beside the study.
        A database server has no file to lock: there two workers asking at the same instant may
        overshoot the budget by up to `n_jobs` trials (no trial is lost or run twice either way).
        """
        path = self.local_file
        if path is None:
            yield
            return
        # The lock is a symlink to this file, which must exist: Optuna times a lock left by a killed
        # worker by the target's mtime, and spins without it. Appending nothing keeps its mtime.
        target = Path(f"{path}.budget")
        target.open("a").close()
        lock = JournalFileSymlinkLock(str(target), grace_period=LOCK_GRACE_S)
        lock.acquire()
        try:
            yield
        finally:
            lock.release()


def resolve_storage(configured: str | None, default_dir: Path | None) -> StudyStorage:
    """The storage `hydra.sweeper.storage` names (see the module doc; null: a journal file in
    `default_dir`); creates the file's folder."""
    if configured is None or str(configured).strip() == "":
        if default_dir is None:
            raise SweepConfigError("hydra.sweeper.storage=null: no folder to keep the study in")
        spec = str((default_dir / JOURNAL_FILE).resolve())
    else:
        spec = str(configured)
        if "://" not in spec:
            spec = str(Path(spec).expanduser().resolve())
        elif spec.startswith("sqlite:"):
            from sqlalchemy.engine import make_url

            database = make_url(spec).database
            if not database or database == ":memory:":
                raise SweepConfigError(f"hydra.sweeper.storage={spec}: an in-memory database keeps nothing; name a file")
            # Absolute, so that jobs started in another folder (SLURM) open the same file.
            spec = f"sqlite:///{Path(database).expanduser().resolve()}"
        elif urlparse(spec).scheme.startswith(("redis", "http", "file")):
            raise SweepConfigError(
                f"hydra.sweeper.storage={spec}: use a journal file path, sqlite:///<file> or a database URL"
            )
    storage = StudyStorage(spec)
    if storage.local_file is not None:
        storage.local_file.parent.mkdir(parents=True, exist_ok=True)
    return storage
