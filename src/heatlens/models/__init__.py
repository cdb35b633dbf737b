"""Backbones behind one contract (`features`, `head`, `embed`, `feature_layer`) and the LightningModule."""

from heatlens.models.errors import ModelConfigError
from heatlens.models.module import HeatlensModule
from heatlens.models.net import (
    HeatlensNet,
    InputTooSmallError,
    build_model,
    freeze,
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
    "model_facts",
    "normalization_for",
]
