"""Any timm model behind heatlens' contract: for every new preset and a table of timm models drawn across
families, built at native size, `head(features(x))` equals timm's own forward and heatlens' all-class
Grad-CAM equals pytorch-grad-cam's GradCAM on timm's model with the reshape transform written here."""

from __future__ import annotations

import pytest
import timm
import torch
from hydra import compose, initialize_config_dir
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from heatlens.explain import cam
from heatlens.models import ModelConfigError, backbone_spec, build_model, normalization_for
from heatlens.paths import CONFIG_DIR

PRESETS = ("convnext_tiny", "efficientnetv2_s", "regnety_016", "vit_small_patch16_224", "deit_small_patch16_224",
           "swin_tiny_patch4_window7_224")
# (timm name, how its forward_features output becomes a (B, K, h, w) map): CNNs, mobile nets,
# hybrids, metaformers, ViT / DeiT (class token), EVA (rope, avg pool), Swin / MaxViT.
OTHERS = {
    "resnet18": "nchw", "mobilenetv3_small_100": "nchw", "regnetx_002": "nchw", "convnext_atto": "nchw",
    "ghostnet_100": "nchw", "mnasnet_small": "nchw", "rexnet_100": "nchw", "hgnetv2_b0": "nchw",
    "repvit_m1": "nchw", "fastvit_t8": "nchw", "edgenext_xx_small": "nchw", "mobilevit_xxs": "nchw",
    "poolformer_s12": "nchw", "tiny_vit_5m_224": "nchw", "coatnet_nano_rw_224": "nchw",
    "maxvit_nano_rw_256": "nchw", "efficientnet_b0": "nchw", "vit_tiny_patch16_224": "vit_split",
    "deit_tiny_patch16_224": "vit_split", "eva02_tiny_patch14_224": "tokens",
}
LAYOUT = {**{p: None for p in PRESETS}, **OTHERS}
CLASSES = 2


def reference_target(model: torch.nn.Module, images: torch.Tensor, layout: str):
    """(target layer, reshape transform) for pytorch-grad-cam on timm's model, written independently."""
    if layout == "vit_split":  # the tokens entering the last block, class token dropped
        grid = model.patch_embed.grid_size
        return model.blocks[-2], lambda t: t[:, model.num_prefix_tokens:].reshape(t.shape[0], *grid, -1).permute(0, 3, 1, 2)
    outputs = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: outputs.setdefault(n, out))
             for n, m in model.named_children()]
    with torch.no_grad():
        final = model.forward_features(images)
    for hook in hooks:
        hook.remove()
    last = [n for n, out in outputs.items() if out is final][-1]  # the top-level module returning the features
    if layout == "nhwc":
        return getattr(model, last), lambda t: t.permute(0, 3, 1, 2)
    if layout == "tokens":
        grid = model.patch_embed.grid_size
        return getattr(model, last), lambda t: t[:, model.num_prefix_tokens:].reshape(t.shape[0], *grid, -1).permute(0, 3, 1, 2)
    return getattr(model, last), None


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_timm_model_matches_timm_forward_and_pytorch_grad_cam(name: str) -> None:
    torch.manual_seed(0)
    net = build_model({"name": name, "pretrained": False}, {"name": "timm"}, CLASSES, 3).eval()
    expected_layout = LAYOUT[name] or ("nhwc" if name.startswith("swin") else "vit_split" if "patch16" in name else "nchw")
    assert net.layout.layout == expected_layout
    reference = timm.create_model(name, num_classes=CLASSES).eval()
    reference.load_state_dict(net.backbone.state_dict())
    size = reference.pretrained_cfg["input_size"][1:]
    images = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fmap = net.features(images)
        torch.testing.assert_close(net.head(fmap), reference(images), rtol=0, atol=0)
    assert fmap.ndim == 4 and fmap.shape[1] == net.backbone.num_features

    out = cam.gradcam_all_classes(net, images)
    layer, reshape = reference_target(reference, images, expected_layout)
    with GradCAM(model=reference, target_layers=[layer], reshape_transform=reshape) as gradcam:
        for c in range(CLASSES):
            targets = [ClassifierOutputTarget(c)]
            gradcam(input_tensor=images.clone(), targets=targets)  # records the (reshaped) map and its gradient
            recorded = gradcam.activations_and_grads
            # pytorch-grad-cam's raw map (before its ReLU, upsampling and min-max): sum_k alpha_k^c A_k.
            expected = torch.from_numpy(gradcam.get_cam_image(
                images, layer, targets, recorded.activations[-1].numpy(), recorded.gradients[-1].numpy()))
            scale = expected.abs().max().item()
            torch.testing.assert_close(out.maps[:, c], expected, atol=1e-4 * scale, rtol=1e-3)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_is_one_thin_yaml_with_timm_native_size(name: str) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"backbone={name}"])
    assert cfg.backbone.name == name and cfg.backbone.pretrained is False
    assert cfg.data.image_size == max(timm.models.get_pretrained_cfg(name).input_size[1:])
    assert normalization_for(cfg.backbone, 3) == (timm.models.get_pretrained_cfg(name).mean,
                                                  timm.models.get_pretrained_cfg(name).std)


def test_any_timm_name_via_backbone_timm_and_unknown_names_get_one_line() -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["backbone=timm", "backbone.name=resnet18"])
    assert backbone_spec(cfg.backbone.name).timm_name == "resnet18"
    with pytest.raises(ModelConfigError, match=r"backbone.name='resnet_18' is not a timm model name.*timm names like it: \['resnet18'") as err:
        backbone_spec("resnet_18")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["levit_128s", "efficientformer_l1"])
def test_a_model_without_a_findable_map_gets_one_line(name: str) -> None:
    """Their forward_features pools the grid into tokens of another length: no map to explain."""
    with torch.device("meta"), pytest.raises(ModelConfigError, match=rf"backbone.name={name}: forward_features returns") as err:
        build_model({"name": name}, {"name": "timm"}, CLASSES, 3)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, size, grid", [("vit_tiny_patch16_224", 64, (4, 4)), ("swin_tiny_patch4_window7_224", 64, (2, 2))])
def test_token_models_patch_grid_follows_the_input_size(name: str, size: int, grid: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = build_model({"name": name, "freeze": "all_but_last_block"}, {"name": "timm"}, CLASSES, 1)
    images = torch.randn(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    out = cam.gradcam_all_classes(net, images)
    assert out.maps.shape == (2, CLASSES, *grid) and out.maps.abs().sum() > 0  # the map carries gradient
    logits = net(images)
    logits.sum().backward()
    trained = {n for n, p in net.backbone.named_parameters() if p.grad is not None}
    assert trained and trained == {n for n, _ in net.backbone.named_parameters()
                                   if n.startswith(tuple(f"{m}." for m in (*net.head_modules, *net.last_block)))}


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "swin_tiny_patch4_window7_224"])
def test_weights_file_loads_a_token_model(name: str, tmp_path) -> None:
    """A timm state dict restores every weight but the classifier (timm re-initialises a classifier whose
    class count differs from its pretrained_cfg's), class token and position embedding included."""
    torch.manual_seed(0)
    source = timm.create_model(name, num_classes=CLASSES)
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    torch.manual_seed(1)
    net = build_model({"name": name, "weights_file": str(tmp_path / "weights.pth")}, {"name": "timm"}, CLASSES, 3)
    classifier = f"{source.pretrained_cfg['classifier']}."
    loaded = net.backbone.state_dict()
    body = [k for k in source.state_dict() if not k.startswith(classifier)]
    assert len(body) > 100 and all(torch.equal(loaded[k], source.state_dict()[k]) for k in body)
