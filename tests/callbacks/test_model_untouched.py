"""The explanation callbacks run inside `trainer.test` (inference mode) and leave the model as found."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning as L
import numpy as np
import pytest
from stores import sqlite_store
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.loggers import MLFlowLogger
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from heatlens.callbacks import (
    AopcCallback,
    EmbeddingsCallback,
    GradCamCallback,
    LocalisationCallback,
    PostFitExplanations,
    SanityCallback,
)
from heatlens.data import build_datamodule
from heatlens.models import HeatlensModule, build_model
from heatlens.paths import CONFIG_DIR


def _tiny_module_and_data(cache: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[HeatlensModule, L.LightningDataModule]:
    monkeypatch.setenv("HEATLENS_CACHE", str(cache))
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["data.num_images=60", "data.image_size=32", "data.source_size=32",
                                          "data.batch_size=8"])
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    net = build_model(cfg.backbone, cfg.head, datamodule.num_classes, datamodule.channels)
    config = OmegaConf.to_container(cfg, resolve=True)
    module = HeatlensModule(cfg=config, class_names=datamodule.class_names, in_chans=datamodule.channels, net=net)
    return module, datamodule


class Probe(L.Callback):
    """Placed after the explanation callbacks: plants state at test start, records it at test end."""

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning zeroes gradients before the test loop, so leftovers are planted here.
        params = list(pl_module.net.parameters())
        params[0].grad = torch.full_like(params[0], 0.5)
        params[-1].requires_grad_(False)
        pl_module.net.head.train()
        self.weights = copy.deepcopy(pl_module.state_dict())
        self.optimizer_state = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.modes = {name: m.training for name, m in pl_module.named_modules()}

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        params = list(pl_module.net.parameters())
        self.grads = [p.grad for p in params]
        self.flags = [p.requires_grad for p in params]
        self.weights_after = copy.deepcopy(pl_module.state_dict())
        self.optimizer_after = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.modes_after = {name: m.training for name, m in pl_module.named_modules()}


def test_callbacks_keep_weights_grads_modes_and_optimizer_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                one_thread: None) -> None:
    module, datamodule = _tiny_module_and_data(tmp_path / "cache", monkeypatch)
    uri = sqlite_store(tmp_path)
    logger = MLFlowLogger(experiment_name="untouched", tracking_uri=uri,
                          artifact_location=(tmp_path / "artifacts").as_uri())
    probe = Probe()
    steps = [GradCamCallback(samples_per_group=1), AopcCallback(region_size=16), EmbeddingsCallback(),
             LocalisationCallback(), SanityCallback(num_images=2, max_layers=2)]
    callbacks = [PostFitExplanations(steps, max_images=6), probe]
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                        num_sanity_val_steps=0, logger=logger, callbacks=callbacks, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=datamodule)
    trainer.test(module, datamodule=datamodule)

    for key, value in probe.weights_after.items():
        torch.testing.assert_close(value, probe.weights[key], rtol=0, atol=0, msg=f"{key} changed")
    assert torch.equal(probe.grads[0], torch.full_like(probe.grads[0], 0.5))
    assert all(g is None for g in probe.grads[1:]), "explanations left parameter gradients behind"
    assert probe.flags == [True] * (len(probe.flags) - 1) + [False]
    assert probe.modes_after == probe.modes and probe.modes["net.head"] and not probe.modes["net.backbone"]
    for param_id, state in probe.optimizer_state["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(probe.optimizer_after["state"][param_id][name]), torch.as_tensor(value))

    # The work really happened, under Lightning's inference mode, and reached the run.
    metrics = MlflowClient(uri).get_run(logger.run_id).data.metrics
    assert {"xai/aopc_morf", "xai/knn_acc_embedding", "xai/loc/lesion/pointing_game", "xai/sanity_rank_corr",
            "time/gradcam_s", "time/aopc_s"} <= set(metrics)
    assert np.isfinite(metrics["xai/sanity_rank_corr"])
