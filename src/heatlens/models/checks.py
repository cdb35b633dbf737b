"""Model-related config values checked before any work: no weights downloaded, no big model built.

Each check raises a one-line ModelConfigError naming `<key>=<value>`.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from heatlens.models.errors import ModelConfigError
from heatlens.models.heads import HEADS, OWN_HEADS
from heatlens.models.optim import check_optimizer_and_scheduler, show
from heatlens.models.registry import backbone_spec

FREEZE_POLICIES = ("none", "backbone", "all_but_last_block")
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
BACKBONE_KEYS = ("name", "pretrained", "weights_file", "freeze")
SIMPLE_CNN_KEYS = (*BACKBONE_KEYS, "width")


def validate_model_config(
    backbone_cfg: Mapping[str, Any],
    head_cfg: Mapping[str, Any],
    optimizer_cfg: Mapping[str, Any],
    scheduler_cfg: Mapping[str, Any] | None,
    channels: int,
) -> None:
    """Every value of `backbone`, `head`, `optimizer`, `scheduler` and `data.channels`, in that order."""
    check_backbone(backbone_cfg, channels)
    check_head(head_cfg)
    # Built on a dummy parameter (and the scheduler stepped): torch itself judges every keyword.
    check_optimizer_and_scheduler(optimizer_cfg, scheduler_cfg)


def check_backbone(backbone_cfg: Mapping[str, Any], channels: int, weights_file_exists: bool = True) -> None:
    """`backbone.*` (name, pretrained, weights_file, freeze; simple_cnn's width) and `data.channels`.

    `weights_file_exists=False` skips checking the file (a checkpoint restores the weights instead).
    """
    name = backbone_cfg.get("name")
    spec = backbone_spec(name)
    known = SIMPLE_CNN_KEYS if spec.timm_name is None else BACKBONE_KEYS
    for key, value in backbone_cfg.items():
        if key not in known:
            raise ModelConfigError(
                f"backbone.{key}={show(value)}: not an option of backbone={name}; choose from {list(known)}"
            )
    pretrained = backbone_cfg.get("pretrained", False)
    if not isinstance(pretrained, bool):
        raise ModelConfigError(f"backbone.pretrained={show(pretrained)}: expected true or false")
    if pretrained and spec.timm_name is None:
        raise ModelConfigError(f"backbone.pretrained=true: backbone {name} has no pretrained weights")
    freeze = backbone_cfg.get("freeze", "none")
    if freeze not in FREEZE_POLICIES:
        raise ModelConfigError(f"backbone.freeze={show(freeze)}: choose one of {list(FREEZE_POLICIES)}")
    width = backbone_cfg.get("width", 16)
    if not _is_positive_int(width):
        raise ModelConfigError(f"backbone.width={show(width)}: expected a positive integer")
    weights_file = backbone_cfg.get("weights_file")
    if weights_file is not None and weights_file_exists:
        check_weights_file(weights_file)
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ModelConfigError(f"data.channels={show(channels)} is not supported; use 1 or 3")


def check_weights_file(weights_file: Any) -> Path:
    """The path of `backbone.weights_file` when it names an existing file with a state-dict suffix."""
    path = Path(str(weights_file)).expanduser()
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ModelConfigError(f"backbone.weights_file={path}: expected one of {WEIGHT_SUFFIXES}")
    if not path.is_file():
        raise ModelConfigError(f"backbone.weights_file={path} does not exist")
    return path


def check_head(head_cfg: Mapping[str, Any]) -> None:
    """`head.name` and its options (types from the head's signature; values by building a tiny one)."""
    name = head_cfg.get("name")
    if name not in HEADS:
        raise ModelConfigError(f"head.name={show(name)} is not a known head; choose one of {list(HEADS)}")
    options = {k: v for k, v in head_cfg.items() if k != "name"}
    if name == "timm":
        if options:
            key, value = next(iter(options.items()))
            raise ModelConfigError(f"head.{key}={show(value)}: head=timm (the backbone's own head) takes no options")
        return
    head_class = OWN_HEADS[name]
    parameters = dict(list(inspect.signature(head_class).parameters.items())[2:])  # after in_features, num_classes
    for key, value in options.items():
        if key not in parameters:
            raise ModelConfigError(
                f"head.{key}={show(value)}: not an option of head={name}; choose from {sorted(parameters)}"
            )
        default = parameters[key].default
        if isinstance(default, int) and not _is_positive_int(value):
            raise ModelConfigError(f"head.{key}={show(value)}: expected a positive integer")
        if isinstance(default, float) and not (isinstance(value, numbers.Real) and not isinstance(value, bool)):
            raise ModelConfigError(f"head.{key}={show(value)}: expected a number")
        try:
            head_class(8, 2, **{key: value})(torch.zeros(1, 8, 3, 3))
        except (TypeError, ValueError, RuntimeError) as err:
            raise ModelConfigError(f"head.{key}={show(value)}: {str(err).splitlines()[0]}") from None


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
