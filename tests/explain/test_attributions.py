import pytest
import torch

from heatlens.explain import ExplainError, attributions


@pytest.mark.parametrize("images_name, chans", [("gray_images", 1), ("rgb_images", 3)])
def test_integrated_gradients_completeness(images_name, chans, request):
    """Axiom: attributions sum to f(x) - f(baseline) of the target logit (within 5 %)."""
    from explain_models import TinyConvNet, randomise_batchnorm

    torch.manual_seed(3)
    model = randomise_batchnorm(TinyConvNet(in_chans=chans, num_classes=3))
    images = request.getfixturevalue(images_name)[:2]
    targets = torch.tensor([0, 2])
    ig = attributions.attribute("integrated_gradients", model, images, targets, n_steps=64, internal_batch_size=16)
    assert ig.shape == images.shape
    with torch.no_grad():
        gap = (model(images) - model(torch.zeros_like(images)))[torch.arange(2), targets]
    torch.testing.assert_close(ig.flatten(1).sum(1), gap, rtol=0.05, atol=1e-4)
    assert all(p.grad is None for p in model.parameters())


def test_vanilla_gradient_equals_autograd(tiny_net, gray_images):
    x = gray_images.clone().requires_grad_(True)
    tiny_net(x)[:, 1].sum().backward()
    got = attributions.attribute("saliency", tiny_net, gray_images, 1)
    torch.testing.assert_close(got, x.grad.abs())


def test_smoothgrad_repeats_with_seed_and_differs_across_seeds(tiny_net, gray_images):
    a = attributions.attribute("smoothgrad", tiny_net, gray_images[:2], 0, seed=4, nt_samples=8)
    b = attributions.attribute("smoothgrad", tiny_net, gray_images[:2], 0, seed=4, nt_samples=8)
    c = attributions.attribute("smoothgrad", tiny_net, gray_images[:2], 0, seed=5, nt_samples=8)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert not torch.allclose(a, attributions.attribute("saliency", tiny_net, gray_images[:2], 0))


@pytest.mark.parametrize("method", ["guided_ig", "blur_ig"])
def test_pair_path_methods_shape_and_repeat(method, tiny_net, gray_images):
    a = attributions.attribute(method, tiny_net, gray_images[:1], 2, steps=16)
    b = attributions.attribute(method, tiny_net, gray_images[:1], 2, steps=16)
    assert a.shape == (1, 1, 32, 32) and torch.equal(a, b) and a.abs().sum() > 0


def test_guided_ig_with_straight_path_is_integrated_gradients(tiny_net, gray_images):
    """max_dist=1 and fraction=1 make Guided IG move every feature at once: plain IG (left Riemann)."""
    gig = attributions.attribute("guided_ig", tiny_net, gray_images[:1], 0, steps=128, fraction=1.0, max_dist=1.0)
    ig = attributions.attribute("integrated_gradients", tiny_net, gray_images[:1], 0, n_steps=128)
    cos = torch.nn.functional.cosine_similarity(gig.flatten(), ig.flatten(), dim=0)
    assert cos > 0.98


def test_xrai_ranks_regions_covering_the_image_and_fast_keeps_top_30_percent(tiny_net, gray_images, rgb_images):
    ranks = attributions.xrai_regions(tiny_net, gray_images[:1], 0, steps=16)
    assert ranks.shape == (1, 32, 32) and int(ranks.min()) == 1
    assert set(ranks.unique().tolist()) == set(range(1, int(ranks.max()) + 1))  # ranks 1..N, no hole
    full = attributions.attribute("xrai", tiny_net, gray_images[:1], 0, steps=16)
    # the XRAI map is constant on each region and higher for better ranked regions
    means = [float(full[0][ranks[0] == r].mean()) for r in range(1, int(ranks.max()) + 1)]
    assert means == sorted(means, reverse=True)
    fast = attributions.attribute("fast_xrai", tiny_net, gray_images[:1], 0, steps=16)
    kept = float((fast != 0).float().mean())
    assert 0.25 <= kept <= 0.45
    assert attributions.attribute("fast_xrai", tiny_net, gray_images[:1], 0, steps=16).equal(fast)
    from explain_models import TinyConvNet

    rgb = attributions.attribute("xrai", TinyConvNet(in_chans=3).eval(), rgb_images[:1], 1, steps=8)
    assert rgb.shape == (1, 64, 64)


def test_inference_mode_caller(tiny_net, gray_images):
    want = attributions.attribute("integrated_gradients", tiny_net, gray_images, 1, n_steps=8)
    with torch.inference_mode():
        got = attributions.attribute("integrated_gradients", tiny_net, gray_images.clone(), 1, n_steps=8)
    torch.testing.assert_close(got, want)


def test_to_heatmap_and_bad_arguments(tiny_net, gray_images):
    attr = torch.tensor([[[[1.0, -2.0]], [[-3.0, 4.0]]]])
    assert attributions.to_heatmap(attr).tolist() == [[[4.0, 6.0]]]
    with pytest.raises(ExplainError, match="unknown attribution method 'lime'"):
        attributions.attribute("lime", tiny_net, gray_images, 0)
    with pytest.raises(ExplainError, match="integrated_gradients does not take nsteps"):
        attributions.attribute("integrated_gradients", tiny_net, gray_images, 0, nsteps=3)
    with pytest.raises(ExplainError, match="targets must lie in"):
        attributions.attribute("saliency", tiny_net, gray_images, 9)
