"""HeatlensModule: metrics against scikit-learn, weighted loss by hand, optimizers, a real fit and reload."""

from __future__ import annotations

import hydra
import lightning as L
import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from toy_data import QuadrantImages

from heatlens.callbacks.distributed import gather_by_index
from heatlens.models import HeatlensModule, ModelConfigError
from heatlens.models.metrics import classification_metrics, named_values
from heatlens.models.optim import build_optimizer, build_scheduler
from heatlens.paths import CONFIG_DIR

CLASSES = ["A", "Healthy", "C c"]
CFG = {
    "backbone": {"name": "simple_cnn", "width": 4},
    "head": {"name": "timm"},
    "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.02},
    "scheduler": {"_target_": None},
}


def test_logged_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    probs[np.arange(60), labels] += rng.random(60)  # better than chance, not perfect
    probs /= probs.sum(1, keepdims=True)
    collection = classification_metrics(3)
    collection.update(torch.tensor(probs, dtype=torch.float32), torch.tensor(labels))
    values = {k: float(v) for k, v in named_values("test", collection.compute(), CLASSES, "Healthy").items()}

    preds = probs.argmax(1)
    recall = skm.recall_score(labels, preds, average=None)
    for i, name in enumerate(CLASSES):
        assert values[f"test/recall/{name}"] == pytest.approx(recall[i], abs=1e-6)
        assert values[f"test/precision/{name}"] == pytest.approx(skm.precision_score(labels, preds, average=None)[i], abs=1e-6)
        assert values[f"test/f1/{name}"] == pytest.approx(skm.f1_score(labels, preds, average=None)[i], abs=1e-6)
        assert values[f"test/auroc/{name}"] == pytest.approx(skm.roc_auc_score(labels == i, probs[:, i]), abs=1e-5)
    assert values["test/acc"] == pytest.approx(skm.accuracy_score(labels, preds), abs=1e-6)
    assert values["test/recall_macro"] == pytest.approx(recall.mean(), abs=1e-6)
    assert values["test/f1_macro"] == pytest.approx(skm.f1_score(labels, preds, average="macro"), abs=1e-6)
    assert values["test/f1_weighted"] == pytest.approx(skm.f1_score(labels, preds, average="weighted"), abs=1e-6)
    assert values["test/recall_disease_mean"] == pytest.approx((recall[0] + recall[2]) / 2, abs=1e-6)


def test_class_weights_weight_the_cross_entropy() -> None:
    module = HeatlensModule(CFG, CLASSES, in_chans=1, class_weights=[1.0, 2.0, 4.0])
    logits = torch.randn(5, 3)
    labels = torch.tensor([0, 1, 2, 2, 1])
    weights = torch.tensor([1.0, 2.0, 4.0])[labels]
    nll = -logits.log_softmax(1)[torch.arange(5), labels]
    torch.testing.assert_close(module.loss_fn(logits, labels), (weights * nll).sum() / weights.sum())


@pytest.mark.parametrize(
    ("cfg", "kind", "lr"),
    [({"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.1}, torch.optim.Adam, 0.1),
     ({"_target_": "torch.optim.SGD", "lr": 0.2, "momentum": 0.9, "nesterov": True}, torch.optim.SGD, 0.2),
     ({"_target_": "torch.optim.RMSprop", "lr": 0.3, "alpha": 0.9}, torch.optim.RMSprop, 0.3),
     ({"_target_": "torch.optim.AdamW", "lr": 0.4, "amsgrad": True}, torch.optim.AdamW, 0.4)],
)
def test_any_torch_optimizer_by_target(cfg: dict, kind: type, lr: float) -> None:
    optimizer = build_optimizer(cfg, [torch.nn.Parameter(torch.zeros(2))])
    assert type(optimizer) is kind and optimizer.param_groups[0]["lr"] == lr


def test_the_shipped_optimizer_configs_are_what_hydra_instantiates() -> None:
    """build_optimizer and Hydra's own `instantiate(cfg.optimizer)(params)` agree on every shipped preset."""
    for name in ("adam", "sgd", "rmsprop"):
        node = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "optimizer" / f"{name}.yaml"))
        ours = build_optimizer(node, [torch.nn.Parameter(torch.zeros(2))])
        hydras = hydra.utils.instantiate(node)([torch.nn.Parameter(torch.zeros(2))])
        assert type(ours) is type(hydras) and ours.defaults == hydras.defaults


def test_schedulers_by_target_and_bad_options() -> None:
    optimizer = build_optimizer({"_target_": "torch.optim.SGD", "lr": 1.0}, [torch.nn.Parameter(torch.zeros(2))])
    assert build_scheduler({"_target_": None}, optimizer) is None
    cosine = build_scheduler({"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "_partial_": True, "T_max": 4},
                             optimizer)["scheduler"]
    lrs = []
    for _ in range(4):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        cosine.step()
    assert lrs == pytest.approx([1.0, 0.5 + 0.5 * np.cos(np.pi / 4), 0.5, 0.5 - 0.5 * np.cos(np.pi / 4)])
    plateau = build_scheduler({"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "monitor": "val/loss",
                               "patience": 1}, optimizer)
    assert plateau["monitor"] == "val/loss"
    with pytest.raises(ModelConfigError, match=r"^optimizer.momentum=0.9: not an option of torch's Adam"):
        build_optimizer({"_target_": "torch.optim.Adam", "momentum": 0.9}, [torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ModelConfigError, match=r"^scheduler._target_='linear': no such class"):
        build_scheduler({"_target_": "linear"}, optimizer)


def test_fit_test_predict_and_reload_from_checkpoint(tmp_path) -> None:
    L.seed_everything(0)
    module = HeatlensModule(CFG, CLASSES, in_chans=1, healthy_class="Healthy")
    train = DataLoader(QuadrantImages(48, seed=0), batch_size=16, shuffle=True)
    test = DataLoader(QuadrantImages(30, seed=1), batch_size=8)
    trainer = L.Trainer(max_epochs=8, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, train_dataloaders=train, val_dataloaders=test)
    assert trainer.callback_metrics["val/recall_disease_mean"] == 1.0
    results = trainer.test(module, dataloaders=test, verbose=False)[0]
    batches = trainer.predict(module, dataloaders=test)
    rows = {key: np.concatenate([batch[key].numpy() for batch in batches]) for key in ("probs", "labels", "index")}
    predictions = gather_by_index(rows["index"], {"probs": rows["probs"], "labels": rows["labels"]})
    assert predictions["index"].tolist() == list(range(30))
    assert (predictions["labels"] == test.dataset.labels.numpy()).all()
    np.testing.assert_allclose(predictions["probs"].sum(1), 1.0, rtol=1e-5)
    assert results["test/acc"] == pytest.approx((predictions["probs"].argmax(1) == predictions["labels"]).mean())

    trainer.save_checkpoint(tmp_path / "m.ckpt")
    reloaded = HeatlensModule.load_from_checkpoint(tmp_path / "m.ckpt").eval()
    assert reloaded.class_names == CLASSES and reloaded.hparams.cfg == CFG
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.net(test.dataset.images), module.net(test.dataset.images))


def test_channels_last_changes_the_layout_not_the_outputs() -> None:
    plain = HeatlensModule(CFG, CLASSES, in_chans=1).eval()
    nhwc = HeatlensModule({**CFG, "model": {"channels_last": True}}, CLASSES, in_chans=1).eval()
    nhwc.net.load_state_dict(plain.net.state_dict())
    assert nhwc.net.backbone.blocks[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(nhwc(images), plain(images), rtol=1e-4, atol=1e-5)
