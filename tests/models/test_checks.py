"""validate_model_config: every model-related value checked up front, each error one line naming key=value."""

from __future__ import annotations

import re

import pytest
import timm
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from heatlens.models import ModelConfigError, validate_model_config
from heatlens.paths import CONFIG_DIR

BACKBONE = {"name": "densenet201", "pretrained": False, "weights_file": None, "freeze": "none"}
HEAD = {"name": "timm"}
COSINE = "torch.optim.lr_scheduler.CosineAnnealingLR"
STEP = "torch.optim.lr_scheduler.StepLR"
PLATEAU = "torch.optim.lr_scheduler.ReduceLROnPlateau"
OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3, "weight_decay": 0.0}
SCHEDULER = {"_target_": COSINE, "_partial_": True, "T_max": 10, "eta_min": 0.0}


def error_of(backbone=None, head=None, optimizer=None, scheduler=None, channels=1) -> str:
    """The message validate_model_config raises for the defaults updated with the given keys."""
    with pytest.raises(ModelConfigError) as caught:
        validate_model_config({**BACKBONE, **(backbone or {})}, {**HEAD, **(head or {})},
                              {**OPTIMIZER, **(optimizer or {})}, scheduler or SCHEDULER, channels)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_shipped_configs_are_valid_and_checked_without_building_a_model(monkeypatch) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("validate_model_config built a timm model")

    monkeypatch.setattr(timm, "create_model", no_model)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for overrides in (["backbone=vgg16", "optimizer=sgd", "scheduler=plateau", "head=pool_mlp"],
                          ["backbone=inception_resnet_v2", "optimizer=rmsprop", "scheduler=step"],
                          ["backbone=simple_cnn", "head=gap_linear", "scheduler=none"], []):
            cfg = compose("train", overrides=overrides)
            validate_model_config(cfg.backbone, cfg.head, cfg.optimizer, cfg.scheduler, cfg.data.channels)


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [({"lr": "abc"}, "optimizer.lr='abc': expected a number"),
     ({"lr": -1}, "optimizer.lr=-1: Invalid learning rate: -1"),
     ({"lr": True}, "optimizer.lr=true: expected a number"),
     ({"betas": [0.9]}, "optimizer.betas=[0.9]: expected a list of 2 numbers"),
     ({"betas": [0.9, 1.5]}, "optimizer.betas=[0.9, 1.5]: Invalid beta parameter at index 1: 1.5"),
     ({"eps": -1e-8}, "optimizer.eps=-1e-08: Invalid epsilon value: -1e-08"),
     ({"momentum": 0.9}, "optimizer.momentum=0.9: not an option of torch's Adam; choose from"),
     ({"amsgrad": "yes"}, "optimizer.amsgrad='yes': expected true or false"),
     ({"_target_": "torch.optim.Lion"}, "optimizer._target_='torch.optim.Lion': no such class; e.g. torch.optim.AdamW"),
     ({"_target_": "torch.nn.Linear"}, "optimizer._target_='torch.nn.Linear': not a torch optimizer"),
     ({"_target_": None}, "optimizer._target_=None: expected a class path, e.g. torch.optim.AdamW")],
)
def test_optimizer_values(optimizer: dict, expected: str) -> None:
    assert error_of(optimizer=optimizer).startswith(expected)


def test_an_option_that_fails_only_with_another_is_named_with_its_value() -> None:
    message = error_of(optimizer={"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.0, "nesterov": True, "weight_decay": 0.0})
    assert message == "optimizer.nesterov=true: Nesterov momentum requires a momentum and zero dampening"


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [({"_target_": COSINE, "T_max": "abc"}, "scheduler.T_max='abc': expected a number"),
     ({"_target_": COSINE, "T_max": 0, "eta_min": 0.0}, "scheduler.T_max=0: "),  # fails on its first step
     ({"_target_": COSINE}, "scheduler.T_max is missing: torch's CosineAnnealingLR needs it"),
     ({"_target_": STEP, "step_size": 0, "gamma": 0.5}, "scheduler.step_size=0: "),
     ({"_target_": STEP, "step_size": 2, "gamma": "half"}, "scheduler.gamma='half': expected a number"),
     ({"_target_": PLATEAU, "monitor": "val/loss", "mode": "maxx"}, "scheduler.mode='maxx': mode maxx is unknown!"),
     ({"_target_": PLATEAU, "mode": "min"}, "scheduler.monitor=None: ReduceLROnPlateau needs a metric name"),
     ({"_target_": COSINE, "T_max": 3, "interval": "batch"}, "scheduler.interval='batch': choose one of ['epoch', 'step']"),
     ({"_target_": COSINE, "T_max": 3, "frequency": 0}, "scheduler.frequency=0: expected a positive integer"),
     ({"_target_": COSINE, "T_max": 3, "patience": 2}, "scheduler.patience=2: not an option of torch's CosineAnnealingLR"),
     ({"_target_": "torch.optim.lr_scheduler.Linear"}, "scheduler._target_='torch.optim.lr_scheduler.Linear': no such class"),
     ({"_target_": "torch.optim.SGD"}, "scheduler._target_='torch.optim.SGD': not a torch scheduler")],
)
def test_scheduler_values(scheduler: dict, expected: str) -> None:
    assert error_of(scheduler=scheduler).startswith(expected)


def test_backbone_head_and_channel_values(tmp_path) -> None:
    (tmp_path / "weights.txt").write_text("x")
    cases = [
        (dict(backbone={"name": "resnet9"}), "backbone.name='resnet9' is not a timm model name (timm.list_models()) nor a heatlens alias"),
        (dict(backbone={"freeze": "some"}), "backbone.freeze='some': choose one of ['none', 'backbone', 'all_but_last_block']"),
        (dict(backbone={"pretrained": "yes"}), "backbone.pretrained='yes': expected true or false"),
        (dict(backbone={"weights_file": str(tmp_path / "gone.pth")}), f"backbone.weights_file={tmp_path / 'gone.pth'} does not exist"),
        (dict(backbone={"weights_file": str(tmp_path / "weights.txt")}), f"backbone.weights_file={tmp_path / 'weights.txt'}: expected one of"),
        (dict(backbone={"width": 4}), "backbone.width=4: not an option of backbone=densenet201"),
        (dict(backbone={"name": "simple_cnn", "width": 0}), "backbone.width=0: expected a positive integer"),
        (dict(backbone={"name": "simple_cnn", "pretrained": True}), "backbone.pretrained=true: backbone simple_cnn has no pretrained weights"),
        (dict(channels=2), "data.channels=2 is not supported; use 1 or 3"),
        (dict(head={"name": "mlp"}), "head.name='mlp' is not a known head; choose one of ['timm', 'gap_linear', 'pool_mlp']"),
        (dict(head={"dropout": 0.5}), "head.dropout=0.5: head=timm (the backbone's own head) takes no options"),
        (dict(head={"name": "gap_linear", "dropout": 2.0}), "head.dropout=2.0: dropout probability has to be between 0 and 1"),
        (dict(head={"name": "gap_linear", "dropout": "x"}), "head.dropout='x': expected a number"),
        (dict(head={"name": "pool_mlp", "hidden": 0}), "head.hidden=0: expected a positive integer"),
        (dict(head={"name": "pool_mlp", "hiden": 3}), "head.hiden=3: not an option of head=pool_mlp; choose from ['grid', 'hidden']"),
    ]
    for kwargs, expected in cases:
        assert error_of(**kwargs).startswith(expected), kwargs


def test_composed_command_line_values_are_checked() -> None:
    """What `python train.py optimizer.lr=abc` composes fails here, naming the key and the value."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        bad_lr = compose("train", overrides=["optimizer.lr=abc"])
        negative = compose("train", overrides=["optimizer=sgd", "optimizer.lr=-1"])
        betas = compose("train", overrides=["+optimizer.betas=[0.9,2]"])
        other = compose("train", overrides=["optimizer._target_=torch.optim.AdamW", "+optimizer.amsgrad=maybe"])
        unknown = compose("train", overrides=["optimizer._target_=torch.optim.Lion"])
        adamw = compose("train", overrides=["optimizer._target_=torch.optim.AdamW", "+optimizer.amsgrad=true"])
    validate_model_config(adamw.backbone, adamw.head, adamw.optimizer, adamw.scheduler, adamw.data.channels)
    for cfg, expected in ((other, "optimizer.amsgrad='maybe': expected true or false"),
                          (unknown, "optimizer._target_='torch.optim.Lion': no such class"),
                          (bad_lr, "optimizer.lr='abc': expected a number"),
                          (negative, "optimizer.lr=-1: Invalid learning rate: -1"),
                          (betas, "optimizer.betas=[0.9, 2]: Invalid beta parameter at index 1: 2")):
        nodes = [cfg.backbone, cfg.head, cfg.optimizer, cfg.scheduler]
        for node in (nodes, [OmegaConf.to_container(n, resolve=True) for n in nodes]):  # DictConfig or dict
            with pytest.raises(ModelConfigError, match=f"^{re.escape(expected)}"):
                validate_model_config(*node, cfg.data.channels)
