"""Which timm model a `backbone.name` builds, and the few facts timm's own metadata does not give.

Any timm model name works (`backbone=timm backbone.name=<timm name>`): the net derives the feature map,
the head modules and the last block from the built model (feature_info, forward_features /
forward_head, see net.py), the input size and mean / std from its pretrained_cfg. `BACKBONES` holds
only the overrides, each with why.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from heatlens.models.errors import ModelConfigError

DEFAULT_MIN_INPUT_SIZE = 32  # the usual total stride: one cell of the last feature map


@dataclass(frozen=True)
class BackboneSpec:
    """What heatlens needs to know about one backbone beyond what timm tells."""

    timm_name: str | None
    # Modules left trainable by `freeze=all_but_last_block` (besides the head); () = derive from
    # timm's feature_info (its last stage and the feature modules after it).
    last_block: tuple[str, ...] = ()
    min_input_size: int | None = None  # None: timm's pretrained_cfg min_input_size, else 32


def _range(prefix: str, start: int, stop: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i}" for i in range(start, stop))


BACKBONES: dict[str, BackboneSpec] = {
    # Keras-era preset names that are not timm's.
    "resnet50v2": BackboneSpec("resnetv2_50"),
    # legacy_xception has no feature_info; its exit flow (block12 ... act4) is the last block.
    "xception": BackboneSpec("legacy_xception", ("block12", "conv3", "bn3", "act3", "conv4", "bn4", "act4")),
    # VGG's feature_info ends at the pre-logits MLP; block 5 = the convs after the fourth max-pool.
    "vgg16": BackboneSpec("vgg16", _range("features", 24, 31)),
    "vgg19": BackboneSpec("vgg19", _range("features", 28, 37)),
    # Inception stems need 75 px; timm's pretrained_cfg does not say so.
    "inception_v3": BackboneSpec("inception_v3", min_input_size=75),
    "inception_resnet_v2": BackboneSpec("inception_resnet_v2", min_input_size=75),
    # Not a timm model: heatlens' own small CNN (simple_cnn.py), classifier = GapLinearHead.
    "simple_cnn": BackboneSpec(None, ("blocks.3",), min_input_size=16),
}


def backbone_spec(name: str) -> BackboneSpec:
    """The spec of `backbone.name` (a preset alias or any timm model name), or one line naming it."""
    # timm pulls in torchvision: imported only for a timm name, not to check simple_cnn's config.
    if name in BACKBONES:
        spec = BACKBONES[name]
    elif isinstance(name, str) and _timm().is_model(name):
        spec = BackboneSpec(name)
    else:
        close = difflib.get_close_matches(name, _timm().list_models(), n=3) if isinstance(name, str) else []
        hint = f"; timm names like it: {close}" if close else ""
        raise ModelConfigError(
            f"backbone.name={name!r} is not a timm model name (timm.list_models()) nor a heatlens alias "
            f"{sorted(BACKBONES)}{hint}"
        )
    if spec.min_input_size is None:
        return BackboneSpec(spec.timm_name, spec.last_block, min_input_size(spec.timm_name))
    return spec


def _timm():
    import timm

    return timm


def min_input_size(timm_name: str) -> int:
    import timm

    cfg = timm.models.get_pretrained_cfg(timm_name)
    size = cfg.min_input_size if cfg is not None else None
    return int(max(size[1:])) if size else DEFAULT_MIN_INPUT_SIZE


def native_input_size(name: str) -> int | None:
    """timm's pretrained_cfg input size of `backbone.name` (None for simple_cnn)."""
    spec = backbone_spec(name)
    if spec.timm_name is None:
        return None
    import timm

    cfg = timm.models.get_pretrained_cfg(spec.timm_name)
    return int(max(cfg.input_size[1:])) if cfg is not None else 224
