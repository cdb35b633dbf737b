"""Every backbone config composes, builds, runs forward+backward, and exposes DESIGN.md's feature layer."""

from __future__ import annotations

import pytest
import timm
import torch
from hydra import compose, initialize_config_dir
from torch import nn

import heatlens.cli.train  # noqa: F401  (registers the config's resolvers)
from heatlens.models import BACKBONES, HeatlensNet, InputTooSmallError, build_model, freeze
from heatlens.paths import CONFIG_DIR

# DESIGN.md's table, written out independently of the registry: (module name, module type).
EXPECTED_FEATURE_LAYER = {
    "vgg16": ("backbone.features.30", nn.MaxPool2d),
    "vgg19": ("backbone.features.36", nn.MaxPool2d),
    "resnet50": ("backbone.layer4", nn.Sequential),
    "resnet50v2": ("backbone.norm", nn.BatchNorm2d),
    "inception_v3": ("backbone.Mixed_7c", nn.Module),
    "xception": ("backbone.act4", nn.ReLU),
    "efficientnet_b0": ("backbone.bn2", nn.BatchNorm2d),
    "densenet121": ("backbone.features.norm5", nn.BatchNorm2d),
    "densenet201": ("backbone.features.norm5", nn.BatchNorm2d),
    "inception_resnet_v2": ("backbone.conv2d_7b", nn.Module),
    "simple_cnn": ("backbone.blocks.3", nn.Sequential),
}
TIMM_NAMES = {"resnet50v2": "resnetv2_50", "xception": "legacy_xception"}
NUM_CLASSES = 3
# vgg16 already checks VGG's own (102M-parameter) classifier: vgg19 trains a light head instead.
HEAD_OVERRIDE = {"vgg19": "gap_linear"}


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_table_covers_every_backbone_config() -> None:
    configs = {p.stem for p in (CONFIG_DIR / "backbone").glob("*.yaml")}
    assert configs == set(EXPECTED_FEATURE_LAYER) == set(BACKBONES)


def _timm_reference(name: str, net: HeatlensNet, in_chans: int) -> nn.Module:
    """timm's own model carrying the net's weights (head modules mapped back to their timm names)."""
    reference = timm.create_model(TIMM_NAMES.get(name, name), num_classes=NUM_CLASSES, in_chans=in_chans)
    state = {k.split(".", 1)[1]: v for k, v in net.state_dict().items()}
    reference.load_state_dict(state)
    return reference.eval()


@pytest.mark.parametrize("name", sorted(EXPECTED_FEATURE_LAYER))
def test_backbone_builds_runs_and_exposes_its_feature_layer(name: str) -> None:
    cfg = compose_train(f"backbone={name}", f"head={HEAD_OVERRIDE.get(name, 'timm')}")
    assert cfg.backbone.name == name and cfg.backbone.pretrained is False
    in_chans = 3 if name in ("vgg16", "resnet50", "efficientnet_b0", "inception_v3") else 1
    net = build_model(cfg.backbone, cfg.head, NUM_CLASSES, in_chans)
    size = max(net.min_input_size, 32)
    images = torch.randn(2, in_chans, size, size, generator=torch.Generator().manual_seed(0))

    layer_name, layer_type = EXPECTED_FEATURE_LAYER[name]
    assert dict(net.named_modules())[layer_name] is net.feature_layer
    assert net.feature_layer_name == layer_name and isinstance(net.feature_layer, layer_type)
    hooked = []
    handle = net.feature_layer.register_forward_hook(lambda _m, _i, out: hooked.append(out))
    net.train()
    fmap = net.features(images)
    handle.remove()
    assert len(hooked) == 1 and hooked[0] is fmap and fmap.ndim == 4

    logits = net.head(fmap)
    assert logits.shape == (2, NUM_CLASSES)
    logits.logsumexp(1).sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    head_params = {id(p) for p in net.head.parameters()}
    assert head_params and head_params.isdisjoint(id(p) for p in net.backbone.parameters())

    net.eval()
    with torch.no_grad():
        fmap = net.features(images)
        embedding = net.embed(images)
        assert embedding.ndim == 2 and len(embedding) == 2
        if name != "simple_cnn" and cfg.head.name == "timm":
            # head=timm is exactly timm's own classifier on timm's own features.
            expected = _timm_reference(name, net, in_chans)(images)
            torch.testing.assert_close(net.head(fmap), expected)

    # freeze=all_but_last_block leaves exactly the spec's last block (and the head) trainable.
    freeze(net, "all_but_last_block")
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    allowed = tuple(f"backbone.{block}." for block in net.spec.last_block) + ("head.",)
    assert trainable and all(n.startswith(allowed) for n in trainable)
    assert any(n.startswith("backbone.") for n in trainable)
    assert any(not p.requires_grad for p in net.backbone.parameters())


def test_inception_family_rejects_small_input_with_a_clear_error() -> None:
    net = build_model({"name": "inception_v3"}, {"name": "timm"}, NUM_CLASSES, in_chans=1)
    with pytest.raises(InputTooSmallError, match=r"inception_v3 needs inputs of at least 75x75 px, got 64x64.*data.image_size"):
        net.features(torch.zeros(1, 1, 64, 64))
