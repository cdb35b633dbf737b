"""Which timm model each `backbone=` name builds, and where its Grad-CAM feature map is (DESIGN.md)."""

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
    min_input_size: int = 32


def _range(prefix: str, start: int, stop: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i}" for i in range(start, stop))


BACKBONES: dict[str, BackboneSpec] = {
    # VGG's block 5 = the three convs after the fourth max-pool, up to the final max-pool.
    "vgg16": BackboneSpec("vgg16", "features.30", _range("features", 24, 31)),
    "vgg19": BackboneSpec("vgg19", "features.36", _range("features", 28, 37)),
    "resnet50": BackboneSpec("resnet50", "layer4", ("layer4",)),
    "resnet50v2": BackboneSpec("resnetv2_50", "norm", ("stages.3", "norm")),
    "inception_v3": BackboneSpec("inception_v3", "Mixed_7c", ("Mixed_7c",), min_input_size=75),
    "xception": BackboneSpec(
        "legacy_xception", "act4", ("block12", "conv3", "bn3", "act3", "conv4", "bn4", "act4")
    ),
    "efficientnet_b0": BackboneSpec("efficientnet_b0", "bn2", ("blocks.6", "conv_head", "bn2")),
    "densenet121": BackboneSpec(
        "densenet121", "features.norm5", ("features.denseblock4", "features.norm5")
    ),
    "densenet201": BackboneSpec(
        "densenet201", "features.norm5", ("features.denseblock4", "features.norm5")
    ),
    "inception_resnet_v2": BackboneSpec(
        "inception_resnet_v2", "conv2d_7b", ("block8", "conv2d_7b"), min_input_size=75
    ),
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
