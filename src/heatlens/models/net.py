"""HeatlensNet: any backbone behind one contract, `features(x)` -> `head(fmap)` (DESIGN.md)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from heatlens.models.errors import ModelConfigError
from heatlens.models.heads import HEADS, GapLinearHead, TimmHead, build_head
from heatlens.models.registry import BackboneSpec, backbone_spec
from heatlens.models.simple_cnn import SimpleCNN

FREEZE_POLICIES = ("none", "backbone", "all_but_last_block")
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


class InputTooSmallError(ModelConfigError):
    """The input image is smaller than the backbone's minimum size."""


class HeatlensNet(nn.Module):
    """`backbone` (feature extractor) + `head`; `feature_layer` is the Grad-CAM target layer."""

    def __init__(self, name: str, backbone: nn.Module, head: nn.Module, spec: BackboneSpec) -> None:
        super().__init__()
        self.name = name
        self.backbone = backbone
        self.head = head
        self.spec = spec
        self.min_input_size = spec.min_input_size
        self.frozen: list[nn.Module] = []

    @property
    def feature_layer(self) -> nn.Module:
        return self.backbone.get_submodule(self.spec.feature_layer)

    @property
    def feature_layer_name(self) -> str:
        """Name of `feature_layer` among `self.named_modules()`."""
        return f"backbone.{self.spec.feature_layer}"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> last conv feature map (B, K, h, w)."""
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            raise InputTooSmallError(
                f"backbone {self.name} needs inputs of at least {self.min_input_size}x"
                f"{self.min_input_size} px, got {height}x{width}: raise data.image_size"
            )
        return self.backbone.forward_features(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate vector (B, D): the head's input to its last linear layer."""
        return self.head.penultimate(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def train(self, mode: bool = True) -> HeatlensNet:
        # Frozen layers keep their BatchNorm statistics too (like Keras' trainable=False).
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self


def normalization_for(backbone_cfg: Mapping[str, Any], channels: int) -> tuple[tuple, tuple]:
    """Input mean/std for a backbone: timm's pretrained statistics, averaged for 1-channel input."""
    spec = backbone_spec(backbone_cfg.get("name"))
    if spec.timm_name is None:
        return (0.5,) * channels, (0.5,) * channels
    pretrained_cfg = timm.models.get_pretrained_cfg(spec.timm_name)
    mean, std = tuple(pretrained_cfg.mean), tuple(pretrained_cfg.std)
    if channels == 1:
        # timm adapts 3-channel weights to 1 channel by summing them: a grey image behaves like
        # an RGB image with equal channels, so normalise with the channel mean.
        return (sum(mean) / 3,), (sum(std) / 3,)
    return mean, std


def build_model(
    backbone_cfg: Mapping[str, Any],
    head_cfg: Mapping[str, Any],
    num_classes: int,
    in_chans: int = 3,
    load_weights: bool = True,
) -> HeatlensNet:
    """Build the configured backbone + head; `load_weights=False` skips pretrained/weights_file."""
    name = backbone_cfg.get("name")
    spec = backbone_spec(name)
    head_name = head_cfg.get("name")
    if head_name not in HEADS:
        raise ModelConfigError(f"head.name={head_name!r} is not a known head; choose one of {list(HEADS)}")
    if in_chans not in (1, 3):
        raise ModelConfigError(f"data.channels={in_chans} is not supported; use 1 or 3")
    pretrained = bool(backbone_cfg.get("pretrained", False)) and load_weights
    weights_file = backbone_cfg.get("weights_file") if load_weights else None
    if spec.timm_name is None:
        backbone, own_head = _simple_cnn(backbone_cfg, num_classes, in_chans, pretrained, weights_file)
    else:
        backbone, own_head = _timm_backbone(spec, num_classes, in_chans, pretrained, weights_file)
    head = own_head if head_name == "timm" else build_head(head_cfg, backbone.num_features, num_classes)
    net = HeatlensNet(name, backbone, head, spec)
    freeze(net, backbone_cfg.get("freeze", "none"))
    return net


def _simple_cnn(
    backbone_cfg: Mapping[str, Any], num_classes: int, in_chans: int, pretrained: bool, weights_file: Any
) -> tuple[nn.Module, nn.Module]:
    if pretrained:
        raise ModelConfigError("backbone simple_cnn has no pretrained weights: set backbone.pretrained=false")
    backbone = SimpleCNN(in_chans=in_chans, width=int(backbone_cfg.get("width", 16)))
    if weights_file:
        state = _read_state_dict(weights_file)
        try:
            backbone.load_state_dict(state)
        except RuntimeError as err:
            raise ModelConfigError(f"backbone.weights_file={weights_file}: does not fit simple_cnn: {err}") from None
    return backbone, GapLinearHead(backbone.num_features, num_classes)


def _timm_backbone(
    spec: BackboneSpec, num_classes: int, in_chans: int, pretrained: bool, weights_file: Any
) -> tuple[nn.Module, nn.Module]:
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans}
    if weights_file:
        file_keys = set(_read_state_dict(weights_file))
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(Path(weights_file).expanduser())})
    elif pretrained:
        kwargs["pretrained"] = True
    try:
        model = timm.create_model(spec.timm_name, **kwargs)
    except Exception as err:  # timm/hub raise many types; all mean "could not get these weights"
        source = f"backbone.weights_file={weights_file}" if weights_file else (
            "backbone.pretrained=true (downloads from the Hugging Face hub; offline, set "
            "backbone.weights_file to a local .pth/.safetensors state dict)"
        )
        first_lines = "\n".join(str(err).splitlines()[:3])
        raise ModelConfigError(f"{source}: could not load weights for {spec.timm_name}: {first_lines}") from None
    head_names = _head_module_names(model, spec)
    if weights_file:
        body_keys = {k for k in model.state_dict() if k.split(".")[0] not in head_names}
        missing = sorted(body_keys - file_keys)
        if missing:
            raise ModelConfigError(
                f"backbone.weights_file={weights_file} is not a {spec.timm_name} state dict: "
                f"{len(missing)} feature weights missing, e.g. {missing[:3]}"
            )
    return model, TimmHead(model, head_names)


def _head_module_names(model: nn.Module, spec: BackboneSpec) -> list[str]:
    # timm registers children in forward order: everything after the feature layer's top-level
    # module belongs to the classifier.
    children = [name for name, _ in model.named_children()]
    return children[children.index(spec.feature_layer.split(".")[0]) + 1 :]


def _read_state_dict(weights_file: Any) -> dict[str, torch.Tensor]:
    path = Path(str(weights_file)).expanduser()
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ModelConfigError(f"backbone.weights_file={path}: expected one of {WEIGHT_SUFFIXES}")
    if not path.is_file():
        raise ModelConfigError(f"backbone.weights_file={path} does not exist")
    try:
        state = timm.models.load_state_dict(str(path))
    except Exception as err:  # torch.load / safetensors raise various types on corrupt files
        raise ModelConfigError(f"backbone.weights_file={path} could not be read: {err}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelConfigError(f"backbone.weights_file={path} is not a state dict of tensors")
    return state


def freeze(net: HeatlensNet, policy: str) -> None:
    """Apply `backbone.freeze`: none | backbone | all_but_last_block (the head always trains)."""
    if policy not in FREEZE_POLICIES:
        raise ModelConfigError(f"backbone.freeze={policy!r}: choose one of {list(FREEZE_POLICIES)}")
    if policy == "none":
        return
    trainable = () if policy == "backbone" else net.spec.last_block
    for name, module in net.backbone.named_children():
        _freeze_except(module, name, trainable, net.frozen)


def _freeze_except(module: nn.Module, name: str, trainable: tuple[str, ...], frozen: list[nn.Module]) -> None:
    if name in trainable:
        return
    if any(t.startswith(name + ".") for t in trainable):
        for child_name, child in module.named_children():
            _freeze_except(child, f"{name}.{child_name}", trainable, frozen)
        return
    module.requires_grad_(False)
    frozen.append(module)


def model_facts(net: nn.Module) -> dict[str, float]:
    """Parameter counts, size in MB (parameters + buffers) and depth (conv + linear layers)."""
    params = list(net.parameters())
    size_bytes = sum(t.numel() * t.element_size() for t in [*params, *net.buffers()])
    depth = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules())
    return {
        "model/params_total": float(sum(p.numel() for p in params)),
        "model/params_trainable": float(sum(p.numel() for p in params if p.requires_grad)),
        "model/size_mb": size_bytes / 2**20,
        "model/depth": float(depth),
    }
