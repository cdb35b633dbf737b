"""Which timm model each `backbone=` name builds, where its Grad-CAM feature map is (DESIGN.md) and
which of its modules form timm's head. tests/models/test_backbones.py checks every entry against timm
with forward hooks (what `forward_features` and `forward_head` actually run)."""

from __future__ import annotations

from dataclasses import dataclass

from heatlens.models.errors import ModelConfigError


@dataclass(frozen=True)
class BackboneSpec:
    """What heatlens needs to know about one backbone beyond what timm tells."""

    timm_name: str | None
    # Dotted module name whose output IS `features(x)` (the Grad-CAM target layer).
    feature_layer: str
    # Modules left trainable by `freeze=all_but_last_block` (besides the head).
    last_block: tuple[str, ...]
    # Top-level modules timm's `forward_head` runs: they always train (freeze keeps them out).
    head_modules: tuple[str, ...] = ()
    min_input_size: int = 32


def _range(prefix: str, start: int, stop: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i}" for i in range(start, stop))


POOL_FC = ("global_pool", "fc")
POOL_DROP = ("global_pool", "head_drop")

BACKBONES: dict[str, BackboneSpec] = {
    # VGG's block 5 = the three convs after the fourth max-pool, up to the final max-pool; its head
    # runs the pre-logits MLP (Keras fc1/fc2 as 7x7 and 1x1 convolutions) before the classifier.
    "vgg16": BackboneSpec("vgg16", "features.30", _range("features", 24, 31), ("pre_logits", "head")),
    "vgg19": BackboneSpec("vgg19", "features.36", _range("features", 28, 37), ("pre_logits", "head")),
    "resnet50": BackboneSpec("resnet50", "layer4", ("layer4",), POOL_FC),
    "resnet50v2": BackboneSpec("resnetv2_50", "norm", ("stages.3", "norm"), ("head",)),
    "inception_v3": BackboneSpec("inception_v3", "Mixed_7c", ("Mixed_7c",), (*POOL_DROP, "fc"), min_input_size=75),
    "xception": BackboneSpec(
        "legacy_xception", "act4", ("block12", "conv3", "bn3", "act3", "conv4", "bn4", "act4"), POOL_FC
    ),
    "efficientnet_b0": BackboneSpec(
        "efficientnet_b0", "bn2", ("blocks.6", "conv_head", "bn2"), ("global_pool", "classifier")
    ),
    "densenet121": BackboneSpec(
        "densenet121", "features.norm5", ("features.denseblock4", "features.norm5"), (*POOL_DROP, "classifier")
    ),
    "densenet201": BackboneSpec(
        "densenet201", "features.norm5", ("features.denseblock4", "features.norm5"), (*POOL_DROP, "classifier")
    ),
    "inception_resnet_v2": BackboneSpec(
        "inception_resnet_v2", "conv2d_7b", ("block8", "conv2d_7b"), (*POOL_DROP, "classif"), min_input_size=75
    ),
    # Its `timm` head is an own GapLinearHead (heads.py), outside the backbone.
    "simple_cnn": BackboneSpec(None, "blocks.3", ("blocks.3",), min_input_size=16),
}


def backbone_spec(name: str) -> BackboneSpec:
    """The spec of `backbone.name`, or a ModelConfigError listing the known names."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ModelConfigError(
            f"backbone.name={name!r} is not a known backbone; choose one of {sorted(BACKBONES)}"
        ) from None
