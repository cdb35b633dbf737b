"""Heads against hand computations, freeze policies on a real optimisation step, weights files."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from heatlens.models import ModelConfigError, build_model, model_facts, normalization_for
from heatlens.models.heads import GapLinearHead, PoolMlpHead

SIMPLE = {"name": "simple_cnn", "width": 4}


def test_gap_linear_head_is_mean_pool_then_linear() -> None:
    head = GapLinearHead(in_features=5, num_classes=3).eval()
    fmap = torch.randn(2, 5, 4, 4)
    expected = fmap.mean(dim=(2, 3)) @ head.fc.weight.T + head.fc.bias
    torch.testing.assert_close(head(fmap), expected)
    torch.testing.assert_close(head.penultimate(fmap), fmap.mean(dim=(2, 3)))


def test_pool_mlp_head_is_4x4_max_pool_then_dense_64_relu_dense() -> None:
    head = PoolMlpHead(in_features=5, num_classes=3)
    fmap = torch.randn(2, 5, 8, 8)
    pooled = fmap.reshape(2, 5, 4, 2, 4, 2).amax(dim=(3, 5)).flatten(1)
    hidden = torch.relu(pooled @ head.fc1.weight.T + head.fc1.bias)
    assert hidden.shape == (2, 64)
    torch.testing.assert_close(head.penultimate(fmap), hidden)
    torch.testing.assert_close(head(fmap), hidden @ head.fc2.weight.T + head.fc2.bias)
    assert head(torch.randn(2, 5, 2, 2)).shape == (2, 3)  # maps smaller than the grid still work


@pytest.mark.parametrize(("head", "embed_dim"), [("timm", 32), ("gap_linear", 32), ("pool_mlp", 64)])
def test_every_head_on_simple_cnn(head: str, embed_dim: int) -> None:
    net = build_model(SIMPLE, {"name": head}, num_classes=4, in_chans=1).eval()
    images = torch.randn(3, 1, 32, 32)
    assert net(images).shape == (3, 4)
    assert net.embed(images).shape == (3, embed_dim)
    torch.testing.assert_close(net(images), net.head(net.features(images)))


def _train_step(net: nn.Module) -> None:
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    net.train()
    loss = nn.functional.cross_entropy(net(torch.randn(4, 1, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()


def test_freeze_backbone_keeps_weights_and_batchnorm_statistics() -> None:
    net = build_model({**SIMPLE, "freeze": "backbone"}, {"name": "timm"}, num_classes=4, in_chans=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _train_step(net)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.fc.weight", "head.fc.bias"}


def test_freeze_all_but_last_block_trains_only_the_last_block_and_head() -> None:
    net = build_model({**SIMPLE, "freeze": "all_but_last_block"}, {"name": "gap_linear"}, num_classes=4, in_chans=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _train_step(net)
    changed = {k.rsplit(".", 1)[0] for k, v in net.state_dict().items() if not torch.equal(before[k], v)}
    assert changed == {"backbone.blocks.3.0", "backbone.blocks.3.1", "head.fc"}
    assert not net.backbone.blocks[0][1].training and net.backbone.blocks[3][1].training


def test_unknown_names_are_rejected_naming_the_key() -> None:
    with pytest.raises(ModelConfigError, match=r"backbone.freeze='some'"):
        build_model({**SIMPLE, "freeze": "some"}, {"name": "timm"}, 4, 1)
    with pytest.raises(ModelConfigError, match=r"backbone.name='resnet9' is not a timm model name.*simple_cnn"):
        build_model({"name": "resnet9"}, {"name": "timm"}, 4, 1)
    with pytest.raises(ModelConfigError, match=r"head.name='mlp'"):
        build_model(SIMPLE, {"name": "mlp"}, 4, 1)
    with pytest.raises(ModelConfigError, match=r"head.hiden=3: not an option of head=pool_mlp"):
        build_model(SIMPLE, {"name": "pool_mlp", "hiden": 3}, 4, 1)
    with pytest.raises(ModelConfigError, match=r"simple_cnn has no pretrained weights"):
        build_model({**SIMPLE, "pretrained": True}, {"name": "timm"}, 4, 1)


@pytest.fixture(scope="module")
def efficientnet_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """An ImageNet-shaped (3-channel, 1000-class) timm state dict saved as .pth and .safetensors."""
    torch.manual_seed(1)
    state = timm.create_model("efficientnet_b0").state_dict()
    folder = tmp_path_factory.mktemp("weights")
    torch.save(state, folder / "b0.pth")
    save_file(state, str(folder / "b0.safetensors"))
    return state, {"pth": folder / "b0.pth", "safetensors": folder / "b0.safetensors"}


@pytest.mark.parametrize("suffix", ["pth", "safetensors"])
def test_weights_file_loads_a_local_timm_state_dict(efficientnet_weights, suffix: str) -> None:
    state, files = efficientnet_weights
    cfg = {"name": "efficientnet_b0", "pretrained": False, "weights_file": str(files[suffix])}
    rgb = build_model(cfg, {"name": "timm"}, num_classes=4, in_chans=3)
    torch.testing.assert_close(rgb.backbone.conv_stem.weight, state["conv_stem.weight"], rtol=0, atol=0)
    torch.testing.assert_close(rgb.backbone.blocks[6][0].conv_pw.weight, state["blocks.6.0.conv_pw.weight"], rtol=0, atol=0)
    assert rgb.backbone.classifier.weight.shape == (4, 1280)  # 1000-class classifier dropped, new one built
    grey = build_model(cfg, {"name": "timm"}, num_classes=4, in_chans=1)
    # timm adapts RGB filters to one channel by summing them.
    torch.testing.assert_close(grey.backbone.conv_stem.weight, state["conv_stem.weight"].sum(1, keepdim=True))
    untouched = build_model(cfg, {"name": "timm"}, num_classes=4, in_chans=3, load_weights=False)
    assert not torch.equal(untouched.backbone.conv_stem.weight, state["conv_stem.weight"])


def test_weights_file_under_an_own_head_loads_the_features_only(efficientnet_weights) -> None:
    state, files = efficientnet_weights
    cfg = {"name": "efficientnet_b0", "weights_file": str(files["pth"])}
    net = build_model(cfg, {"name": "gap_linear"}, num_classes=4, in_chans=3)
    body = net.backbone.state_dict()
    assert set(body) == set(state) - {"classifier.weight", "classifier.bias"}
    assert all(torch.equal(value, state[key]) for key, value in body.items())
    assert net.head.fc.weight.shape == (4, 1280)


def test_freeze_backbone_with_the_timm_head_trains_only_timm_classifier() -> None:
    net = build_model({"name": "efficientnet_b0", "freeze": "backbone"}, {"name": "timm"}, num_classes=4, in_chans=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _train_step(net)
    changed = {k for k, v in net.state_dict().items() if not torch.equal(before[k], v)}
    # BatchNorm running statistics of the frozen body stay too.
    assert changed == {"backbone.classifier.weight", "backbone.classifier.bias"}


def test_bad_weights_files_are_named_in_the_error(tmp_path) -> None:
    cfg = {"name": "efficientnet_b0"}
    with pytest.raises(ModelConfigError, match=r"weights_file=.*missing.pth does not exist"):
        build_model({**cfg, "weights_file": str(tmp_path / "missing.pth")}, {"name": "timm"}, 4, 3)
    # Restoring from a checkpoint (no weights loaded) does not need the file any more.
    build_model({**cfg, "weights_file": str(tmp_path / "missing.pth")}, {"name": "timm"}, 4, 3, load_weights=False)
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(ModelConfigError, match=r"weights_file=.*w.txt: expected one of"):
        build_model({**cfg, "weights_file": str(tmp_path / "w.txt")}, {"name": "timm"}, 4, 3)
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ModelConfigError, match=r"weights_file=.*resnet18.pth.*efficientnet_b0") as caught:
        build_model({**cfg, "weights_file": str(tmp_path / "resnet18.pth")}, {"name": "timm"}, 4, 3)
    assert len(str(caught.value).splitlines()) <= 3
    # Right shapes, wrong names: timm would load nothing silently; heatlens refuses.
    renamed = {f"renamed.{k}": v for k, v in timm.create_model("efficientnet_b0").state_dict().items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(ModelConfigError, match=r"renamed.pth is not a efficientnet_b0 state dict.*missing"):
        build_model({**cfg, "weights_file": str(tmp_path / "renamed.pth")}, {"name": "timm"}, 4, 3)


def test_simple_cnn_weights_file_round_trip(tmp_path) -> None:
    source = build_model(SIMPLE, {"name": "timm"}, 4, 1)
    torch.save(source.backbone.state_dict(), tmp_path / "simple.pt")
    loaded = build_model({**SIMPLE, "weights_file": str(tmp_path / "simple.pt")}, {"name": "timm"}, 4, 1)
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(loaded.backbone.state_dict()[key], value)


def test_normalization_follows_the_backbone() -> None:
    assert normalization_for(SIMPLE, 1) == ((0.5,), (0.5,))
    mean, std = normalization_for({"name": "resnet50"}, 3)
    assert mean == pytest.approx((0.485, 0.456, 0.406)) and std == pytest.approx((0.229, 0.224, 0.225))
    grey_mean, grey_std = normalization_for({"name": "resnet50"}, 1)
    assert grey_mean == pytest.approx((sum(mean) / 3,)) and grey_std == pytest.approx((sum(std) / 3,))


def test_model_facts_by_hand_and_against_timm() -> None:
    net = build_model({**SIMPLE, "freeze": "backbone"}, {"name": "timm"}, num_classes=3, in_chans=1)
    convs = 1 * 4 * 9 + 4 * 8 * 9 + 8 * 16 * 9 + 16 * 32 * 9  # bias-free 3x3 convs, widths 4, 8, 16, 32
    batchnorm = 2 * (4 + 8 + 16 + 32)  # weight + bias; running mean + var are buffers
    fc = 32 * 3 + 3
    facts = model_facts(net)
    assert facts["model/params_total"] == convs + batchnorm + fc
    assert facts["model/params_trainable"] == fc
    assert facts["model/size_mb"] * 2**20 == (convs + batchnorm + fc + batchnorm) * 4 + 4 * 8  # 4 int64 counters
    assert facts["model/depth"] == 4 + 1
    # A timm head counts exactly timm's model; an own head counts no timm classifier.
    timm_head = build_model({"name": "efficientnet_b0"}, {"name": "timm"}, num_classes=3, in_chans=1)
    reference = timm.create_model("efficientnet_b0", num_classes=3, in_chans=1, device="meta")
    assert model_facts(timm_head)["model/params_total"] == sum(p.numel() for p in reference.parameters())
    own_head = build_model({"name": "efficientnet_b0"}, {"name": "gap_linear"}, num_classes=3, in_chans=1)
    assert model_facts(own_head)["model/params_total"] == model_facts(timm_head)["model/params_total"]
