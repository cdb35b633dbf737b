import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from heatlens.explain import ExplainError, cam


def reference_gradcam(model, images, target):
    """pytorch-grad-cam's GradCAM, one call per class (its output: ReLU, upsampled, min-max)."""
    x = images.clone().requires_grad_(True)
    with GradCAM(model=model, target_layers=[model.feature_layer]) as ref:
        return torch.from_numpy(ref(input_tensor=x, targets=[ClassifierOutputTarget(target)] * len(images)))


def ours_as_library_does(out, c, size):
    return cam.normalize_per_image(cam.upsample(cam.relu(out.maps[:, c]), size))


@pytest.mark.parametrize("net_name, images_name", [("tiny_net", "gray_images"), ("timm_net", "rgb_images")])
def test_gradcam_equals_pytorch_grad_cam_for_every_class(net_name, images_name, request):
    model, images = request.getfixturevalue(net_name), request.getfixturevalue(images_name)
    out = cam.gradcam_all_classes(model, images)
    assert out.maps.shape == (images.shape[0], 3, *model.features(images).shape[-2:])
    torch.testing.assert_close(out.logits, model(images), atol=1e-5, rtol=1e-5)
    for c in range(3):
        torch.testing.assert_close(ours_as_library_does(out, c, images.shape[-2:]),
                                   reference_gradcam(model, images, c), atol=2e-5, rtol=1e-4)


def test_raw_maps_are_weighted_sums_before_relu(tiny_net, gray_images):
    """Hand-check on the definition: alpha = spatial mean of d logit / d A; raw map = sum_k alpha_k A_k."""
    out = cam.gradcam_all_classes(tiny_net, gray_images)
    fmap = tiny_net.features(gray_images)
    # head = linear(mean pool): d logit_c / d A_k(i,j) = W[c,k] / (h*w), so alpha_k^c = W[c,k] / (h*w).
    alpha = tiny_net.classifier.weight / (fmap.shape[2] * fmap.shape[3])
    expected = torch.einsum("ck,bkhw->bchw", alpha, fmap)
    torch.testing.assert_close(out.maps, expected.detach(), atol=1e-6, rtol=1e-5)
    assert (out.maps < 0).any(), "raw maps keep negative evidence (no ReLU applied)"


def test_no_parameter_gradients_trainable_or_frozen(tiny_net, gray_images):
    cam.gradcam_all_classes(tiny_net, gray_images)
    assert all(p.grad is None for p in tiny_net.parameters())
    for p in tiny_net.parameters():
        p.requires_grad_(False)
    frozen = cam.gradcam_all_classes(tiny_net, gray_images)
    assert all(p.grad is None for p in tiny_net.parameters())
    assert frozen.maps.abs().sum() > 0


def test_works_under_inference_mode_and_keeps_train_mode(tiny_net, gray_images):
    expected = cam.gradcam_all_classes(tiny_net, gray_images).maps
    tiny_net.train()
    with torch.inference_mode():
        x = gray_images.clone()  # created in inference mode, as in Lightning's test loop
        got = cam.gradcam_all_classes(tiny_net, x).maps
    assert tiny_net.training
    torch.testing.assert_close(got, expected)


def test_autocast_bfloat16_close_to_float32(timm_net, rgb_images):
    exact = cam.gradcam_all_classes(timm_net, rgb_images)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = cam.gradcam_all_classes(timm_net, rgb_images)
    assert low.maps.dtype == torch.float32
    for c in range(3):
        a, b = exact.maps[:, c].flatten(1), low.maps[:, c].flatten(1)
        corr = torch.nn.functional.cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True))
        assert (corr > 0.95).all()


def test_helpers():
    maps = torch.tensor([[[-1.0, 3.0], [1.0, 1.0]]])
    assert cam.relu(maps).tolist() == [[[0.0, 3.0], [1.0, 1.0]]]
    norm = cam.normalize_per_image(maps)
    assert float(norm.min()) == 0.0 and float(norm.max()) == pytest.approx(1.0, abs=1e-6)
    assert cam.normalize_per_image(torch.ones(1, 3, 3)).abs().max() == 0
    up = cam.upsample(maps, (4, 4))
    assert up.shape == (1, 4, 4)
    # align_corners=False: the 2x2 input at half-pixel centres; corner output pixels copy corner inputs.
    assert up[0, 0, 0] == -1.0 and up[0, 0, 3] == 3.0
    out = cam.CamOutput(maps=torch.arange(8.0).view(1, 2, 2, 2).repeat(2, 1, 1, 1), logits=torch.zeros(2, 2))
    picked = cam.heatmaps_for(out, torch.tensor([1, 0]))
    assert picked[0].flatten().tolist() == [4.0, 5.0, 6.0, 7.0] and picked[1].flatten().tolist() == [0, 1, 2, 3]


def test_library_cam_gradcam_matches_direct_library_and_frozen_works(tiny_net, gray_images):
    got = cam.library_cam("gradcam", tiny_net, gray_images, [0, 1, 2, 0])
    assert got.shape == (4, 32, 32)
    assert all(p.grad is None for p in tiny_net.parameters())
    direct = reference_gradcam(tiny_net, gray_images[:1], 0)
    torch.testing.assert_close(got[:1], direct)
    for p in tiny_net.parameters():
        p.requires_grad_(False)
    frozen = cam.library_cam("gradcam", tiny_net, gray_images, [0, 1, 2, 0])
    torch.testing.assert_close(frozen, got)


@pytest.mark.parametrize("method", cam.LIBRARY_METHODS)
def test_every_library_method_runs(method, tiny_net, gray_images):
    out = cam.library_cam(method, tiny_net, gray_images[:2], 1)
    assert out.shape == (2, 32, 32)
    assert np.isfinite(out.numpy()).all() and out.min() >= 0 and out.max() <= 1 + 1e-6
    assert method in cam._library_methods()


def test_scorecam_equals_the_library_and_draws_no_progress_bar(tiny_net, gray_images, capfd):
    from pytorch_grad_cam import ScoreCAM

    ours = cam.library_cam("scorecam", tiny_net, gray_images, [0, 1, 2, 0])
    assert capfd.readouterr().err == ""  # the library alone draws a tqdm bar per batch of images
    with ScoreCAM(model=tiny_net, target_layers=[tiny_net.feature_layer]) as reference:
        reference.batch_size = 32
        expected = reference(input_tensor=gray_images, targets=[ClassifierOutputTarget(t) for t in [0, 1, 2, 0]])
    assert "it/s" in capfd.readouterr().err
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-5)


def test_bad_input_is_named(tiny_net, gray_images):
    with pytest.raises(ExplainError, match=r"unknown CAM method .gradcam\+\+\+."):
        cam.library_cam("gradcam+++", tiny_net, gray_images, 0)
    with pytest.raises(ExplainError, match="lacks features, head"):
        cam.gradcam_all_classes(torch.nn.Linear(2, 2), gray_images)
    with pytest.raises(ExplainError, match=r"\(B, C, H, W\)"):
        cam.gradcam_all_classes(tiny_net, gray_images[0])
    with pytest.raises(ExplainError, match="targets must lie in"):
        cam.library_cam("gradcam", tiny_net, gray_images, 7)


def test_hirescam_and_xgradcam_equal_gradcam_for_a_pooling_linear_head(tiny_net, gray_images):
    """With global average pooling + linear, d score / d A is constant over space: HiResCAM's elementwise
    product and XGradCAM's activation-weighted mean then reduce to Grad-CAM's weights."""
    targets = [0, 1, 2, 1]
    ours = cam.library_cam("gradcam", tiny_net, gray_images, targets)
    for method in ("hirescam", "xgradcam"):
        torch.testing.assert_close(cam.library_cam(method, tiny_net, gray_images, targets), ours, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(cam.library_cam("gradcam++", tiny_net, gray_images, targets), ours, atol=1e-3)
