"""Every backbone config composes, builds, runs forward+backward, and matches timm and the model contract's table (docs/design.md).

Each backbone is built once (the VGGs and inception_resnet_v2 take seconds) at its minimum input size.
"""

from __future__ import annotations

import pytest
import timm
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from heatlens.models import BACKBONES, HeatlensNet, InputTooSmallError, build_model, freeze, gradcam_map_size
from heatlens.paths import CONFIG_DIR

# docs/design.md's table, written out independently of the registry: (module name, module type).
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
# Own heads on a few backbones (vgg19: VGG's head is pruned, pre-logits MLP included). vgg16 and
# densenet121 check the timm head of the same timm classes (VGG, DenseNet), so every class is covered.
HEAD_OVERRIDE = {"vgg19": "gap_linear", "densenet201": "pool_mlp"}
RGB = ("vgg16", "resnet50", "efficientnet_b0", "inception_v3")


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def called_modules(root: nn.Module, run) -> list[str]:
    """Names (in `root`) of the modules that `run()` calls, found with forward hooks."""
    names: list[str] = []
    handles = [m.register_forward_hook(lambda *_, n=n: names.append(n)) for n, m in root.named_modules() if n]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return names


def params_of(root: nn.Module, module_names: list[str]) -> set[str]:
    modules = dict(root.named_modules())
    return {f"{n}.{p}" for n in set(module_names) for p, _ in modules[n].named_parameters(recurse=False)}


@pytest.fixture(scope="module", params=sorted(EXPECTED_FEATURE_LAYER))
def built(request) -> tuple[str, HeatlensNet, torch.Tensor]:
    """(name, net, a batch of 2 images at the backbone's minimum size), built once per module."""
    name = request.param
    cfg = compose_train(f"backbone={name}", f"head={HEAD_OVERRIDE.get(name, 'timm')}")
    assert cfg.backbone.name == name and cfg.backbone.pretrained is False
    in_chans = 3 if name in RGB else 1
    torch.manual_seed(0)
    net = build_model(cfg.backbone, cfg.head, NUM_CLASSES, in_chans)
    size = max(net.min_input_size, 32)
    images = torch.randn(2, in_chans, size, size, generator=torch.Generator().manual_seed(0))
    return name, net, images


def test_table_covers_every_preset_of_the_registry() -> None:
    configs = {p.stem for p in (CONFIG_DIR / "backbone").glob("*.yaml")}
    assert set(BACKBONES) <= set(EXPECTED_FEATURE_LAYER) <= configs


def test_feature_layer_output_is_the_feature_map(built) -> None:
    name, net, images = built
    layer_name, layer_type = EXPECTED_FEATURE_LAYER[name]
    assert dict(net.named_modules())[net.feature_layer_name] is net.feature_layer
    layer = dict(net.named_modules())[layer_name]
    assert isinstance(layer, layer_type)
    hooked, target = [], []
    handles = [layer.register_forward_hook(lambda _m, _i, out: hooked.append(out)),
               net.feature_layer.register_forward_hook(lambda _m, _i, out: target.append(out))]
    net.eval()
    with torch.no_grad():
        fmap = net.features(images)
    for handle in handles:
        handle.remove()
    assert len(hooked) == 1 and hooked[0] is fmap and target[0] is fmap and fmap.ndim == 4
    assert fmap.shape[1] == net.backbone.num_features  # timm's (and SimpleCNN's) channel count


def test_forward_backward_uses_every_parameter(built) -> None:
    """No parameter is dead weight: an own head leaves no timm classifier (or VGG pre-logits) behind."""
    _, net, images = built
    net.train()
    net.zero_grad()
    logits = net.head(net.features(images))
    assert logits.shape == (2, NUM_CLASSES)
    logits.logsumexp(1).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    net.zero_grad(set_to_none=True)


def test_matches_timm_with_the_same_weights(built) -> None:
    name, net, images = built
    if name == "simple_cnn":
        pytest.skip("not a timm model")
    net.eval()
    in_chans = images.shape[1]
    timm_head = name not in HEAD_OVERRIDE
    # Built on the meta device (no init cost), then given the net's weights: net.backbone is timm's model
    # in timm's own state-dict layout (with an own head: less timm's head).
    reference = timm.create_model(TIMM_NAMES.get(name, name), num_classes=NUM_CLASSES if timm_head else 0,
                                  in_chans=in_chans, device="meta").eval()
    result = reference.load_state_dict(net.backbone.state_dict(), strict=timm_head, assign=True)
    assert all(key.startswith(("pre_logits.", "head.")) for key in result.missing_keys)
    with torch.no_grad():
        fmap = net.features(images)
        torch.testing.assert_close(fmap, reference.forward_features(images))
        if timm_head:
            torch.testing.assert_close(net.head(fmap), reference(images))
            torch.testing.assert_close(net.embed(images), reference.forward_head(fmap, pre_logits=True))
        else:
            assert net.embed(images).shape[0] == 2


def test_head_modules_are_what_timm_forward_head_runs(built) -> None:
    name, net, images = built
    if name == "simple_cnn" or name in HEAD_OVERRIDE:
        pytest.skip("no timm head in this net")
    model = net.backbone
    with torch.no_grad():
        fmap = model.forward_features(images)
    head_calls = {n.split(".")[0] for n in called_modules(model, lambda: model.forward_head(fmap))}
    feature_calls = {n.split(".")[0] for n in called_modules(model, lambda: model.forward_features(images))}
    assert head_calls == set(net.head_modules)
    assert not head_calls & feature_calls


def test_freeze_policies_leave_exactly_the_head_and_last_block_trainable(built) -> None:
    _, net, images = built
    net.eval()
    with torch.no_grad():
        fmap = net.features(images)
    head_params = params_of(net, called_modules(net, lambda: net.head(fmap)))
    assert head_params

    freeze(net, "backbone")
    assert {n for n, p in net.named_parameters() if p.requires_grad} == head_params
    net.requires_grad_(True)
    net.frozen.clear()

    freeze(net, "all_but_last_block")
    last_block = tuple(f"backbone.{block}." for block in net.last_block)
    expected = head_params | {n for n, _ in net.named_parameters() if n.startswith(last_block)}
    assert {n for n, p in net.named_parameters() if p.requires_grad} == expected
    assert any(not p.requires_grad for p in net.backbone.parameters())
    net.train()
    assert not any(m.training for m in net.frozen) and net.head.training
    net.requires_grad_(True)
    net.frozen.clear()


def test_gradcam_map_size_is_the_feature_map_size_and_restores_the_mode() -> None:
    net = build_model({"name": "simple_cnn", "width": 4, "freeze": "backbone"}, {"name": "timm"}, 3, 1)
    net.train()
    assert gradcam_map_size(net, 64, 1) == (8, 8)  # output stride 8
    assert gradcam_map_size(net, 20, 1) == (2, 2)  # 20 -> 10 -> 5 -> 2 (floor of each max-pool)
    assert net.training and net.head.training and not net.frozen[0].training
    assert all(p.grad is None for p in net.parameters())
    with torch.device("meta"):  # a shape question: no weights initialised, no convolution computed
        resnet = build_model({"name": "resnet50"}, {"name": "timm"}, 3, 1).eval()
    assert gradcam_map_size(resnet, 224, 1) == (7, 7) and gradcam_map_size(resnet, 64, 1) == (2, 2)
    assert not resnet.training


def test_inception_family_rejects_small_input_with_a_clear_error() -> None:
    with torch.device("meta"):  # the check is on the input's size: no weights needed
        net = build_model({"name": "inception_v3"}, {"name": "timm"}, NUM_CLASSES, in_chans=1)
        with pytest.raises(InputTooSmallError, match=r"inception_v3 needs inputs of at least 75x75 px, got 64x64.*data.image_size"):
            net.features(torch.zeros(1, 1, 64, 64))
