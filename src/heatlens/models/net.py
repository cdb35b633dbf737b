"""HeatlensNet: any backbone behind one contract, `features(x)` -> `head(fmap)` (docs/design.md, "The model contract")."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from heatlens.models.checkpoint_read import refusal
from heatlens.models.checks import FREEZE_POLICIES, check_backbone, check_head, check_weights_file
from heatlens.models.errors import ModelConfigError
from heatlens.models.heads import GapLinearHead, TimmHead, build_head
from heatlens.models.optim import show
from heatlens.models.registry import BackboneSpec, backbone_spec
from heatlens.models.simple_cnn import SimpleCNN

if TYPE_CHECKING:
    from heatlens.models.timm_layout import TimmLayout


class InputTooSmallError(ModelConfigError):
    """The input image is smaller than the backbone's minimum size."""


class HeatlensNet(nn.Module):
    """`backbone` (timm's model, or SimpleCNN) + `head`; `feature_layer` is the Grad-CAM target layer.

    features = the backbone's `forward_features` as a (B, K, h, w) map (timm_layout.py: token and
    channels-last models reshaped), passed through `feature_map`, an identity module whose output IS the
    map: every CAM method hooks it, whatever the backbone. With head=timm the head is timm's own
    `forward_head` and its modules stay inside the backbone (timm's state-dict layout); other heads are
    modules of their own and the timm model is built without a classifier.
    """

    def __init__(
        self,
        name: str,
        backbone: nn.Module,
        head: nn.Module,
        spec: BackboneSpec,
        layout: TimmLayout | None = None,
        head_modules: tuple[str, ...] = (),
        last_block: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.name = name
        self.backbone = backbone
        self.head = head
        self.feature_map = nn.Identity()
        self.spec = spec
        self.layout = layout
        self.min_input_size = spec.min_input_size
        # Top-level backbone modules timm's `forward_head` runs (they always train) and those
        # `freeze=all_but_last_block` keeps trainable.
        self.head_modules = head_modules
        self.last_block = spec.last_block or last_block
        self.frozen: list[nn.Module] = []

    @property
    def feature_layer(self) -> nn.Module:
        return self.feature_map

    @property
    def feature_layer_name(self) -> str:
        """Name of `feature_layer` among `self.named_modules()`."""
        return "feature_map"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> last feature map (B, K, h, w)."""
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            raise InputTooSmallError(
                f"backbone {self.name} needs inputs of at least {self.min_input_size}x"
                f"{self.min_input_size} px, got {height}x{width}: raise data.image_size"
            )
        fmap = self.layout.features(x) if self.layout is not None else self.backbone.forward_features(x)
        return self.feature_map(fmap)

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
    import timm  # here, not at the top: a simple_cnn run never pays its import (0.25 s)

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
    check_backbone(backbone_cfg, in_chans, weights_file_exists=load_weights)
    check_head(head_cfg)
    name = backbone_cfg["name"]
    spec = backbone_spec(name)
    own_head = head_cfg["name"] != "timm"
    pretrained = bool(backbone_cfg.get("pretrained", False)) and load_weights
    weights_file = backbone_cfg.get("weights_file") if load_weights else None
    if spec.timm_name is None:
        backbone = _simple_cnn(backbone_cfg, in_chans, weights_file)
    else:
        backbone = _timm_backbone(spec, 0 if own_head else num_classes, in_chans, pretrained, weights_file)
    if spec.timm_name is None:
        head = build_head(head_cfg, backbone.num_features, num_classes) if own_head else (
            GapLinearHead(backbone.num_features, num_classes)  # simple_cnn's own classifier
        )
        net = HeatlensNet(name, backbone, head, spec)
    else:
        from heatlens.models.timm_layout import derive_structure

        layout, head_modules, last_block = derive_structure(backbone, name, in_chans, spec.min_input_size, own_head)
        head = build_head(head_cfg, backbone.num_features, num_classes) if own_head else TimmHead(layout)
        net = HeatlensNet(name, backbone, head, spec, layout, head_modules, last_block)
    freeze(net, backbone_cfg.get("freeze", "none"))
    return net


def _simple_cnn(backbone_cfg: Mapping[str, Any], in_chans: int, weights_file: Any) -> SimpleCNN:
    backbone = SimpleCNN(in_chans=in_chans, width=int(backbone_cfg.get("width", 16)))
    if weights_file:
        state = _read_state_dict(weights_file)
        try:
            backbone.load_state_dict(state)
        except RuntimeError as err:
            raise ModelConfigError(f"backbone.weights_file={weights_file}: does not fit simple_cnn: {err}") from None
    return backbone


def _timm_backbone(
    spec: BackboneSpec, num_classes: int, in_chans: int, pretrained: bool, weights_file: Any
) -> nn.Module:
    """timm's model; `num_classes=0`: no classifier (a heatlens head replaces timm's)."""
    import timm

    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans}
    if weights_file:
        file_keys = set(_read_state_dict(weights_file))
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(Path(weights_file).expanduser())})
    elif pretrained:
        kwargs["pretrained"] = True
    try:
        model = _create(spec.timm_name, kwargs)
    except Exception as err:  # timm/hub raise many types; all mean "could not get these weights"
        source = f"backbone.weights_file={weights_file}" if weights_file else (
            "backbone.pretrained=true (downloads from the Hugging Face hub; offline, set "
            "backbone.weights_file to a local .pth/.safetensors state dict)"
        )
        first_lines = "\n".join(str(err).splitlines()[:3])
        raise ModelConfigError(f"{source}: could not load weights for {spec.timm_name}: {first_lines}") from None
    if num_classes == 0 and isinstance(model, timm.models.VGG):
        # Without a classifier VGG's head still runs its pre-logits MLP (120M weights unused by a
        # heatlens head); timm's pruning drops the whole head and leaves forward_features as it is.
        model.prune_intermediate_layers(prune_head=True)
    if weights_file:
        # timm loads a file with a different class count non-strictly: a body key the file lacks would
        # silently keep its random init. The classifier (pretrained_cfg) is the only part a file may lack.
        classifier = model.pretrained_cfg.get("classifier") or ()
        prefixes = tuple(f"{c}." for c in ([classifier] if isinstance(classifier, str) else classifier))
        missing = sorted(k for k in model.state_dict() if not k.startswith(prefixes) and k not in file_keys)
        if missing:
            raise ModelConfigError(
                f"backbone.weights_file={weights_file} is not a {spec.timm_name} state dict: "
                f"{len(missing)} feature weights missing, e.g. {missing[:3]}"
            )
    return model


def _create(timm_name: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm's model; token / window models (ViT, Swin...) built to take any input size (the patch grid
    follows the image), which leaves their native-size forward unchanged."""
    import timm

    try:
        return timm.create_model(timm_name, dynamic_img_size=True, **kwargs)
    except TypeError as err:
        if "dynamic_img_size" not in str(err):
            raise
    return timm.create_model(timm_name, **kwargs)


def _read_state_dict(weights_file: Any) -> dict[str, torch.Tensor]:
    import timm

    path = check_weights_file(weights_file)
    try:
        state = timm.models.load_state_dict(str(path))  # torch.load(weights_only=True) or safetensors
    except Exception as err:  # noqa: BLE001
        unsafe = err if isinstance(err, pickle.UnpicklingError) else err.__cause__  # timm re-raises it wrapped
        if isinstance(unsafe, pickle.UnpicklingError):
            raise refusal(path, "backbone.weights_file", unsafe) from None
        # torch.load / safetensors raise various types on corrupt files
        raise ModelConfigError(f"backbone.weights_file={path} could not be read: {err}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelConfigError(f"backbone.weights_file={path} is not a state dict of tensors")
    return state


def freeze(net: HeatlensNet, policy: str) -> None:
    """Apply `backbone.freeze`: none | backbone | all_but_last_block (the head always trains)."""
    if policy not in FREEZE_POLICIES:
        raise ModelConfigError(f"backbone.freeze={show(policy)}: choose one of {list(FREEZE_POLICIES)}")
    if policy == "none":
        return
    trainable = net.head_modules + (() if policy == "backbone" else net.last_block)
    for name, module in net.backbone.named_children():
        _freeze_except(module, name, trainable, net.frozen)
    for parameter in net.backbone.parameters(recurse=False):  # ViT's class token and position embedding
        parameter.requires_grad_(False)


def _freeze_except(module: nn.Module, name: str, trainable: tuple[str, ...], frozen: list[nn.Module]) -> None:
    if name in trainable:
        return
    if any(t.startswith(name + ".") for t in trainable):
        for child_name, child in module.named_children():
            _freeze_except(child, f"{name}.{child_name}", trainable, frozen)
        return
    module.requires_grad_(False)
    frozen.append(module)


def gradcam_map_size(net: HeatlensNet, image_size: int, channels: int) -> tuple[int, int]:
    """(h, w) of `features` for a square `image_size` input: one forward of a single blank image.

    Raises InputTooSmallError below the backbone's minimum input size.
    """
    was_training = net.training
    net.eval()
    try:
        device = next(net.parameters()).device
        with torch.no_grad():
            fmap = net.features(torch.zeros(1, channels, image_size, image_size, device=device))
    finally:
        net.train(was_training)
    return int(fmap.shape[-2]), int(fmap.shape[-1])


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
