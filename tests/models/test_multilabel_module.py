"""Multi-label model: masked BCE, per-finding metrics against scikit-learn, sigmoid predictions,
per-finding checkpoints and the task-dependent selection metric."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from heatlens.callbacks.checkpoints import LAST, SelectionCheckpoint, recall_checkpoints
from heatlens.models import HeatlensModule
from heatlens.models.metrics import known_targets, multilabel_metrics, named_values
from heatlens.models.module import MaskedBCEWithLogits

FINDINGS = ["Effusion", "Mass", "Pleural Thickening"]
CFG = {"backbone": {"name": "simple_cnn", "width": 4}, "head": {"name": "timm"},
       "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.01}, "scheduler": {"_target_": None},
       "data": {"task": "multilabel"}}
NAN = float("nan")


def _bce(logit: float, label: float, weight: float = 1.0) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(weight * label * math.log(p) + (1 - label) * math.log(1 - p))


def test_masked_bce_averages_the_known_labels_only() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], requires_grad=True)
    labels = torch.tensor([[1.0, NAN, 0.0], [NAN, 1.0, 1.0]])
    known = [(2.0, 1.0), (0.5, 0.0), (3.0, 1.0), (-2.0, 1.0)]
    loss = MaskedBCEWithLogits()(logits, labels)
    assert loss.item() == pytest.approx(np.mean([_bce(x, y) for x, y in known]), rel=1e-6)
    loss.backward()
    assert logits.grad[0, 1] == 0 and logits.grad[1, 0] == 0  # unknown labels pull nothing
    # pos_weight multiplies the positive term of its finding only.
    weighted = MaskedBCEWithLogits([1.0, 2.0, 3.0])(logits, labels)
    expected = [_bce(2.0, 1.0, 1.0), _bce(0.5, 0.0, 3.0), _bce(3.0, 1.0, 2.0), _bce(-2.0, 1.0, 3.0)]
    assert weighted.item() == pytest.approx(np.mean(expected), rel=1e-6)


def test_a_batch_without_known_labels_has_zero_loss_not_nan() -> None:
    logits = torch.zeros(2, 3, requires_grad=True)
    loss = MaskedBCEWithLogits()(logits, torch.full((2, 3), NAN))
    loss.backward()
    assert loss.item() == 0 and torch.equal(logits.grad, torch.zeros(2, 3))


def test_metrics_per_finding_match_sklearn_on_the_known_labels() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((60, 3)) < 0.4).astype(np.float32)
    probs = np.clip(labels * 0.3 + rng.random((60, 3)) * 0.7, 0, 1).astype(np.float32)
    labels[rng.random((60, 3)) < 0.2] = np.nan
    metrics = multilabel_metrics(3)
    for part in (slice(0, 25), slice(25, 60)):  # two batches
        metrics.update(torch.from_numpy(probs[part]), known_targets(torch.from_numpy(labels[part])))
    values = named_values("val", metrics.compute(), FINDINGS, None)
    aurocs = []
    for k, name in enumerate(FINDINGS):
        keep = ~np.isnan(labels[:, k])
        y, p = labels[keep, k], probs[keep, k]
        aurocs.append(skm.roc_auc_score(y, p))
        assert values[f"val/auroc/{name}"].item() == pytest.approx(aurocs[-1], abs=1e-5)
        assert values[f"val/ap/{name}"].item() == pytest.approx(skm.average_precision_score(y, p), abs=1e-5)
        predicted = p >= 0.5
        assert values[f"val/sensitivity/{name}"].item() == pytest.approx(predicted[y == 1].mean(), abs=1e-6)
        assert values[f"val/specificity/{name}"].item() == pytest.approx((~predicted[y == 0]).mean(), abs=1e-6)
    assert values["val/auroc_macro"].item() == pytest.approx(np.mean(aurocs), abs=1e-5)
    expected = {f"val/{m}/{f}" for m in ("auroc", "ap", "sensitivity", "specificity") for f in FINDINGS}
    assert set(values) == expected | {"val/auroc_macro", "val/ap_macro"}


def test_module_predicts_sigmoids_and_logs_the_contract_names() -> None:
    torch.manual_seed(0)
    module = HeatlensModule(CFG, FINDINGS, in_chans=1, pos_weight=[1.0, 2.0, 0.5])
    assert module.multilabel and torch.equal(module.loss_fn.pos_weight, torch.tensor([1.0, 2.0, 0.5]))
    images = torch.randn(4, 1, 32, 32)
    labels = torch.tensor([[1.0, 0.0, NAN]] * 4)
    out = module.predict_step({"image": images, "label": labels, "index": torch.arange(4)}, 0)
    logits = module(images)
    assert torch.allclose(out["probs"], logits.sigmoid(), atol=1e-6)
    assert out["probs"].sum(1).sub(1).abs().max() > 1e-3  # independent findings, not a softmax
    assert torch.equal(torch.isnan(out["labels"]), torch.isnan(labels))
    # The multi-class module is untouched by the task key's absence.
    plain = HeatlensModule({k: v for k, v in CFG.items() if k != "data"}, FINDINGS, in_chans=1)
    assert not plain.multilabel and isinstance(plain.loss_fn, torch.nn.CrossEntropyLoss)


def test_per_finding_checkpoints_and_a_constant_model_never_wins(tmp_path) -> None:
    callbacks = recall_checkpoints(FINDINGS, tmp_path, multilabel=True)
    assert set(callbacks) == {f"val/auroc/{f}" for f in FINDINGS} | {"val/auroc_macro", LAST}
    assert callbacks["val/auroc/Pleural Thickening"].filename == "best-auroc-Pleural_Thickening"
    assert callbacks["val/auroc_macro"].filename == "best-auroc_macro"
    checkpoint: SelectionCheckpoint = callbacks["val/auroc/Mass"]
    # A constant score: AUROC 0.5 for every finding (torchmetrics), so macro AUROC 0.5 = chance.
    constant = checkpoint.selection_key({"val/auroc/Mass": 1.0, "val/auroc_macro": 0.5, "val/loss": 0.1})
    learning = checkpoint.selection_key({"val/auroc/Mass": 0.7, "val/auroc_macro": 0.8, "val/loss": 0.6})
    assert not constant.beats_chance and learning.better_than(constant, 0.0)
    near = checkpoint.selection_key({"val/auroc/Mass": 0.695, "val/auroc_macro": 0.9, "val/loss": 0.6})
    assert near.better_than(learning, 0.01) and not near.better_than(learning, 0.0)


def test_a_constant_scorer_has_chance_auroc_in_torchmetrics() -> None:
    """The axiom the selection relies on: equal scores for all images give AUROC 0.5 per finding."""
    metrics = multilabel_metrics(3)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    metrics.update(torch.full((3, 3), 0.7), known_targets(labels))
    assert metrics.compute()["auroc_macro"].item() == pytest.approx(0.5)
