"""Entry points run in the test's own process: `main` of a `@hydra.main` entry point called with a patched
`sys.argv`, exactly as `python train.py <args>` calls it, without the ~13 s an interpreter pays to start
and import torch, Lightning and MLflow again. One subprocess smoke test per entry point stays in its module.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Result:
    """What `subprocess.run(..., capture_output=True, text=True)` would have returned."""

    returncode: int
    stdout: str
    stderr: str


def stop_joblib_workers() -> None:
    """joblib keeps its loky worker processes (Hydra's joblib launcher: `hydra/launcher=parallel`) alive
    between calls, with the environment they started with: a later in-process run with another tracking
    URI or PYTHONPATH would reuse them. Stopping them makes the next call start fresh ones."""
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


@contextmanager
def restored(env: Mapping[str, str | None]) -> Iterator[None]:
    """`env` added to the environment (None: the variable unset) for the block; afterwards environment,
    argv, cwd, torch threads, root logging and MLflow's process-wide tracking URI as they were: Hydra
    reconfigures logging, and logging a model sets MLflow's URI (and its environment variable). joblib's
    worker processes are stopped before and after, so none outlives the environment it started in."""
    stop_joblib_workers()
    saved_env = dict(os.environ)
    saved = (list(sys.argv), os.getcwd(), torch.get_num_threads())
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    os.environ["HYDRA_FULL_ERROR"] = "1"  # the task's own exception, not Hydra's one-line report and exit
    torch.set_num_threads(1)  # 2 shared test cores: oversubscribed threads make tiny convolutions ~30x slower
    try:
        yield
    finally:
        stop_joblib_workers()
        sys.argv[:] = saved[0]
        os.chdir(saved[1])
        torch.set_num_threads(saved[2])
        root.handlers[:] = handlers
        root.setLevel(level)
        if "mlflow" in sys.modules:
            sys.modules["mlflow"].set_tracking_uri(None)  # back to following MLFLOW_TRACKING_URI
        os.environ.clear()
        os.environ.update(saved_env)


def run_main(main: Callable[[], object], *args: str, env: Mapping[str, str | None] | None = None,
             program: str = "train.py") -> Result:
    """Call `main()` as `python <program> <args>` would, with `env` added to the environment (None: unset);
    return its exit code and output. An exception that would end the process is its exit code 1 and
    traceback on stderr."""
    out, err = io.StringIO(), io.StringIO()
    returncode = 0
    with restored(env or {}), redirect_stdout(out), redirect_stderr(err):
        sys.argv[:] = [program, *args]
        try:
            main()
        except SystemExit as ended:
            if isinstance(ended.code, str):
                print(ended.code, file=sys.stderr)
            returncode = ended.code if isinstance(ended.code, int) else (0 if ended.code is None else 1)
        except Exception:  # noqa: BLE001 - as the interpreter would: traceback, exit code 1
            traceback.print_exc()
            returncode = 1
    return Result(returncode, out.getvalue(), err.getvalue())
