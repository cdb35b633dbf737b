"""AtomicCheckpointIO writes Lightning's bytes, and a checkpoint equal to one it already wrote becomes a
hard link to that file (if it is still the file written); replacing one linked name later never changes
the others."""

from __future__ import annotations

import os

import lightning as L
import pytest
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from heatlens.data import atomic
from heatlens.models.checkpoint_io import AtomicCheckpointIO


def weights(seed: int) -> dict:
    torch.manual_seed(seed)
    return {"epoch": 0, "state_dict": {"w": torch.randn(64, 64), "b": torch.randn(64)}}


def test_the_bytes_are_lightnings_and_an_equal_checkpoint_is_a_link(tmp_path) -> None:
    plugin, checkpoint = AtomicCheckpointIO(), weights(0)
    TorchCheckpointIO().save_checkpoint(checkpoint, tmp_path / "lightning.ckpt")
    plugin.save_checkpoint(checkpoint, tmp_path / "a.ckpt")
    plugin.save_checkpoint(weights(1), tmp_path / "c.ckpt")
    plugin.save_checkpoint(weights(0), tmp_path / "b.ckpt")  # equal to a's (not the same object), c between
    a, b, c = ((tmp_path / f"{name}.ckpt").stat() for name in "abc")
    assert (tmp_path / "a.ckpt").read_bytes() == (tmp_path / "lightning.ckpt").read_bytes()
    assert a.st_ino == b.st_ino and a.st_nlink == 2
    assert c.st_ino != a.st_ino and c.st_nlink == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt", "b.ckpt", "c.ckpt", "lightning.ckpt"]


def test_replacing_a_linked_name_leaves_the_other(tmp_path) -> None:
    plugin = AtomicCheckpointIO()
    plugin.save_checkpoint(weights(0), tmp_path / "a.ckpt")
    plugin.save_checkpoint(weights(0), tmp_path / "b.ckpt")
    plugin.save_checkpoint(weights(1), tmp_path / "a.ckpt")
    assert torch.equal(torch.load(tmp_path / "b.ckpt", weights_only=True)["state_dict"]["w"],
                       weights(0)["state_dict"]["w"])
    assert torch.equal(torch.load(tmp_path / "a.ckpt", weights_only=True)["state_dict"]["w"],
                       weights(1)["state_dict"]["w"])
    assert (tmp_path / "b.ckpt").stat().st_nlink == 1


def test_a_file_changed_or_gone_since_is_not_linked_to(tmp_path) -> None:
    plugin = AtomicCheckpointIO()
    plugin.save_checkpoint(weights(0), tmp_path / "a.ckpt")
    (tmp_path / "a.ckpt").unlink()
    plugin.save_checkpoint(weights(0), tmp_path / "b.ckpt")
    plugin.save_checkpoint(weights(0), tmp_path / "c.ckpt")  # b is now the file to link to
    (tmp_path / "c.ckpt").unlink()
    (tmp_path / "c.ckpt").write_bytes(b"someone else's file")
    plugin.save_checkpoint(weights(0), tmp_path / "d.ckpt")
    assert (tmp_path / "d.ckpt").stat().st_nlink == 1
    assert (tmp_path / "d.ckpt").read_bytes() == (tmp_path / "b.ckpt").read_bytes()


def test_without_hard_links_the_bytes_are_written(tmp_path, monkeypatch) -> None:
    def refuse(*_):
        raise OSError(1, "Operation not permitted")  # as a file system without hard links answers

    monkeypatch.setattr(atomic.os, "link", refuse)
    plugin = AtomicCheckpointIO()
    plugin.save_checkpoint(weights(0), tmp_path / "a.ckpt")
    plugin.save_checkpoint(weights(0), tmp_path / "b.ckpt")
    assert (tmp_path / "b.ckpt").stat().st_nlink == 1
    assert (tmp_path / "b.ckpt").read_bytes() == (tmp_path / "a.ckpt").read_bytes()


class TwoMetrics(BoringModel):
    def validation_step(self, batch, batch_idx):
        loss = super().validation_step(batch, batch_idx)["x"]
        self.log_dict({"one": loss, "two": -loss})


def test_monitors_saving_in_one_epoch_share_one_file_in_a_trainer(tmp_path) -> None:
    callbacks = [ModelCheckpoint(tmp_path, filename=name, monitor=name, save_weights_only=True)
                 for name in ("one", "two")]
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, callbacks=callbacks,
                        plugins=[AtomicCheckpointIO()], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(TwoMetrics())
    one, two = (tmp_path / "one.ckpt").stat(), (tmp_path / "two.ckpt").stat()
    assert one.st_ino == two.st_ino
    assert torch.load(tmp_path / "two.ckpt", weights_only=True)["global_step"] == 2


def test_storage_options_are_refused_as_lightning_refuses_them(tmp_path) -> None:
    with pytest.raises(TypeError, match="storage_options"):
        AtomicCheckpointIO().save_checkpoint(weights(0), tmp_path / "a.ckpt", storage_options={"x": 1})
    assert not os.listdir(tmp_path)
