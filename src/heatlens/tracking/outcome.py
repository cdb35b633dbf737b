"""How a run ends: FINISHED only when everything was logged; KILLED, pruned or FAILED otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L

from heatlens.tracking.describe import describe_run
from heatlens.tracking.run import RunHandle
from heatlens.tracking.setup import record_failure
from heatlens.tracking.sweep import record_pruned


@contextmanager
def recorded_outcome(run: RunHandle | None, trainer: L.Trainer) -> Iterator[None]:
    """FINISHED when the block completes; KILLED on Ctrl-C (and, tagged `pruned`, when a sweep prunes the
    trial); FAILED with the error on anything else. `run` is None on ranks > 0 (nothing to record)."""
    try:
        yield
    except KeyboardInterrupt:
        _end(run, "KILLED")
        raise
    except SystemExit:
        # Lightning turns Ctrl-C during fit/test into sys.exit(1) after marking the trainer interrupted.
        if trainer.interrupted:
            _end(run, "KILLED")
        elif run is not None:
            record_failure(run, RuntimeError("the job exited before the run was complete"))
        raise
    except Exception as error:
        if run is not None:
            if _pruned(error):
                record_pruned(run, error)
            else:
                record_failure(run, error)
        raise
    if run is not None:
        describe_run(run)
    _end(run, "FINISHED")


def _pruned(error: Exception) -> bool:
    # Only a sweep imports Optuna; a plain run must not pay for it to learn it was not pruned.
    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(error, optuna.TrialPruned)


def _end(run: RunHandle | None, status: str) -> None:
    if run is not None:
        run.set_status(status)
