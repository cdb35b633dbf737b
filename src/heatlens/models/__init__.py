"""Backbones (timm, simple_cnn) behind one contract (`features`, `head`, `embed`, `feature_layer`), heads, optimizers, config checks, the LightningModule.
May import torch, timm, lightning, torchmetrics, scikit-learn, heatlens.explain and top-level helpers; never mlflow, callbacks, tracking, cli or report.

Members are imported on first use (heatlens.lazy): importing the package costs nothing.
"""

from heatlens.lazy import lazy_members
from heatlens.models.errors import ModelConfigError as ModelConfigError

_MEMBERS = {
    "BACKBONES": "registry",
    "HeatlensModule": "module",
    "HeatlensNet": "net",
    "InputTooSmallError": "net",
    "backbone_spec": "registry",
    "build_model": "net",
    "freeze": "net",
    "gradcam_map_size": "net",
    "model_facts": "net",
    "normalization_for": "net",
    "validate_model_config": "checks",
}

__all__ = sorted([*_MEMBERS, "ModelConfigError"])
__getattr__ = lazy_members(__name__, _MEMBERS)
