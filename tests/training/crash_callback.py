"""Callbacks that crash, interrupt or kill training at a chosen point (for the failure tests' subprocesses)."""

import os
import signal

import lightning as L


class CrashAtEpoch(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"planted crash at epoch {self.epoch}")


class SignalAt(L.Callback):
    """Sends this process a signal at a stage: `interrupt` (SIGINT, Ctrl-C) at the end of epoch 0, or
    `kill` (SIGKILL, nothing can clean up) when the test pass starts, i.e. after fit."""

    def __init__(self, what: str) -> None:
        self.what = what

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.what == "interrupt":
            # As in a terminal: Python's own handler. A parent that ignores SIGINT (a pytest-xdist worker)
            # passes the ignoring on to this process, and the signal would then do nothing.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), signal.SIGINT)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.what == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
