"""A callback that crashes training at a chosen epoch (for the failure tests' subprocesses)."""

import lightning as L


class CrashAtEpoch(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"planted crash at epoch {self.epoch}")
