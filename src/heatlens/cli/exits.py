"""How every entry point ends on a user error: `<program>: error: <one line>` on stderr, exit code 2.

As argparse does. `<program>` is what the user typed: `train.py` for `python train.py`, `heatlens-train`
for the console script and for `python -m heatlens.cli.train`. Any `HeatlensError` is a user error;
anything else is a bug and keeps its traceback. A single run that fails on a user error leaves no
output folder behind: Hydra creates it (with `.hydra/` and the job's log) before the task starts.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

from omegaconf import DictConfig

from heatlens.errors import HeatlensError

T = TypeVar("T")
USER_ERROR_EXIT = 2
# When this process started its command: Hydra's files in the run folder are newer than this.
_STARTED = time.time()


def program(command: str) -> str:
    """The name the user typed for `command` (train, explain, compare, bench)."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    inside_package = Path(__file__).resolve().parents[1] in script.resolve().parents
    if script.name.startswith("heatlens-") or inside_package or script.suffix != ".py":
        return f"heatlens-{command}"
    return script.name


def fail(command: str, error: BaseException) -> NoReturn:
    """Print the one-line error and exit with USER_ERROR_EXIT."""
    line = " ".join(str(error).split())  # one line, whatever the message held
    print(f"{program(command)}: error: {line}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT)


def run_task(command: str, work: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """Run a Hydra task; a user error ends a single run in `fail` (a multirun's launcher records it and
    goes on with the other jobs)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return work(cfg)
    except HeatlensError as error:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise
        remove_fresh_run_dir(Path(hydra_cfg.runtime.output_dir), stop_at=_home())
        fail(command, error)


def _home() -> Path:
    from heatlens.paths import home_dir

    return home_dir()


def remove_fresh_run_dir(run_dir: Path, stop_at: Path) -> bool:
    """Delete `run_dir` if it holds only what Hydra wrote for this process (`.hydra/`, `*.log`, all newer
    than its start), then its parents left empty, up to `stop_at`. A folder with anything else is kept."""
    if not run_dir.is_dir() or run_dir.stat().st_mtime < _STARTED - 1:
        return False
    entries = list(run_dir.rglob("*"))
    hydra_made = all(
        (p.relative_to(run_dir).parts[0] == ".hydra" or (p.parent == run_dir and p.suffix == ".log"))
        and p.stat().st_mtime >= _STARTED - 1
        for p in entries
    )
    if not hydra_made:
        return False
    _close_file_logs(run_dir)
    shutil.rmtree(run_dir)
    stop_at = stop_at.resolve()
    parent = run_dir.resolve().parent
    while parent != stop_at and stop_at in parent.parents and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    return True


def _close_file_logs(run_dir: Path) -> None:
    """Hydra's job log handler keeps its file open: close and drop it before the folder goes."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        filename = getattr(handler, "baseFilename", None)
        if filename and Path(filename).resolve().parent == run_dir.resolve():
            root.removeHandler(handler)
            handler.close()
