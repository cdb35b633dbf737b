"""Backbones (timm, simple_cnn) behind one contract (`features`, `head`, `embed`, `feature_layer`), heads, optimizers, config checks, the LightningModule.
May import torch, timm, lightning, torchmetrics, scikit-learn, heatlens.explain and top-level helpers; never mlflow, callbacks, tracking, cli or report."""

from heatlens.models.checks import validate_model_config
from heatlens.models.errors import ModelConfigError
from heatlens.models.module import HeatlensModule
from heatlens.models.net import (
    HeatlensNet,
    InputTooSmallError,
    build_model,
    freeze,
    gradcam_map_size,
    model_facts,
    normalization_for,
)
from heatlens.models.registry import BACKBONES, backbone_spec

__all__ = [
    "BACKBONES",
    "HeatlensModule",
    "HeatlensNet",
    "InputTooSmallError",
    "ModelConfigError",
    "backbone_spec",
    "build_model",
    "freeze",
    "gradcam_map_size",
    "model_facts",
    "normalization_for",
    "validate_model_config",
]
