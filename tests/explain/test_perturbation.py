import math

import pytest
import torch
from torch import nn
from torchvision.transforms.v2.functional import gaussian_blur

from heatlens.explain import ExplainError, perturbation


class LinearToy(nn.Module):
    """logits = [sum(w * x), 0]: every region's contribution to the class-0 logit is known by hand."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x):
        s = (x * self.weight).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def quadrant_weights(values=(4.0, 3.0, 2.0, 1.0)):
    """4x4 map whose 2x2 quadrants (row-major) sum to `values`."""
    w = torch.zeros(1, 1, 4, 4)
    for i, v in enumerate(values):
        r, c = divmod(i, 2)
        w[..., 2 * r:2 * r + 2, 2 * c:2 * c + 2] = v / 4
    return w


def test_region_grid_ceil_rule_for_sizes_not_dividing_the_image():
    grid = perturbation.region_grid(5, 5, 2)
    assert grid.tolist() == [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5], [3, 3, 4, 4, 5], [6, 6, 7, 7, 8]]
    rel = perturbation.region_relevance(grid[None].float(), (5, 5), 2)
    assert rel[0].tolist() == list(range(9))  # mean over each (possibly smaller) region


def test_hand_known_aopc_logit_and_probability():
    model = LinearToy(quadrant_weights())
    x = torch.ones(1, 1, 4, 4)
    heat = quadrant_weights()[0]
    kw = dict(region_size=2, perturbation="zero", score="logit")
    morf = perturbation.perturbation_curves(model, x, heat, 0, order="morf", **kw)
    lerf = perturbation.perturbation_curves(model, x, heat, 0, order="lerf", **kw)
    assert morf[0].tolist() == pytest.approx([10, 6, 3, 1, 0])
    assert lerf[0].tolist() == pytest.approx([10, 9, 7, 4, 0])
    assert perturbation.aopc(morf) == pytest.approx(30 / 5)  # (4 + 7 + 9 + 10) / (L + 1)
    assert perturbation.aopc(lerf) == pytest.approx(20 / 5)  # (1 + 3 + 6 + 10) / (L + 1)

    prob = perturbation.perturbation_curves(model, x, heat, 0, region_size=2, perturbation="zero")
    sigmoid = [1 / (1 + math.exp(-s)) for s in (10, 6, 3, 1, 0)]
    assert prob[0].tolist() == pytest.approx(sigmoid, abs=1e-6)
    assert perturbation.aopc(prob) == pytest.approx(sum(sigmoid[0] - v for v in sigmoid[1:]) / 5, abs=1e-6)


def naive_curves(model, images, heatmaps, targets, region_size, order, kind, sigma, seed, blur_sigma, steps):
    """Plain per-image, per-step loop following the documented rules and seed protocol."""
    g = torch.Generator().manual_seed(seed)
    _, c, h, w = images.shape
    draws = []
    for x in images:
        if kind == "gaussian_noise":
            draws.append(x + sigma * torch.randn((c, h, w), generator=g))
        elif kind == "uniform_replace":
            draws.append(x.min() + (x.max() - x.min()) * torch.rand((c, h, w), generator=g))
        elif kind == "mean":
            draws.append(x.mean(dim=(1, 2), keepdim=True).expand(c, h, w))
        elif kind == "blur":
            radius = math.ceil(3 * blur_sigma)
            draws.append(gaussian_blur(x[None], [2 * radius + 1] * 2, [blur_sigma] * 2)[0])
        else:
            draws.append(torch.zeros(c, h, w))
    slices = [(slice(r, min(r + region_size, h)), slice(q, min(q + region_size, w)))
              for r in range(0, h, region_size) for q in range(0, w, region_size)]
    rows = []
    for b, x in enumerate(images):
        if order == "random":
            ranked = [slices[i] for i in torch.randperm(len(slices), generator=g).tolist()]
        else:
            up = torch.nn.functional.interpolate(heatmaps[b][None, None], size=(h, w), mode="bilinear",
                                                 align_corners=False)[0, 0]
            rel = [float(up[s].mean()) for s in slices]
            sign = -1 if order == "morf" else 1
            ranked = [slices[i] for i in sorted(range(len(slices)), key=lambda i: sign * rel[i])]
        current = x.clone()
        row = []
        for k in range(min(steps, len(slices)) + 1):
            if k:
                rs, cs = ranked[k - 1]
                current[:, rs, cs] = draws[b][:, rs, cs]
            with torch.no_grad():
                row.append(float(model(current[None]).softmax(1)[0, targets[b]]))
        rows.append(row)
    return torch.tensor(rows)


@pytest.mark.parametrize("order, kind", [("morf", "gaussian_noise"), ("lerf", "uniform_replace"),
                                         ("random", "mean"), ("morf", "blur"), ("lerf", "zero")])
def test_equal_to_naive_loop(tiny_net, gray_images, order, kind):
    images = gray_images[:3, :, :30, :30]  # 30 px with 7 px regions: 5 x 5 grid, last row/col 2 px
    heat = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(5))
    targets = [0, 2, 1]
    got = perturbation.perturbation_curves(tiny_net, images, heat, targets, region_size=7, order=order,
                                           perturbation=kind, sigma=0.3, seed=3, batch_size=5, blur_sigma=1.5)
    want = naive_curves(tiny_net, images, heat, targets, 7, order, kind, 0.3, 3, 1.5, steps=25)
    assert got.shape == (3, 26)
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)


def test_seeded_repeatable_and_batch_size_invariant(tiny_net, gray_images):
    heat = gray_images[:, 0, ::4, ::4]
    kw = dict(region_size=8, perturbation="gaussian_noise", seed=11, steps=6)
    first = perturbation.perturbation_curves(tiny_net, gray_images, heat, 1, batch_size=4, **kw)
    again = perturbation.perturbation_curves(tiny_net, gray_images, heat, 1, batch_size=7, **kw)
    assert torch.equal(first, again) or torch.allclose(first, again, atol=1e-6, rtol=0)
    other = perturbation.perturbation_curves(tiny_net, gray_images, heat, 1, batch_size=4,
                                             **{**kw, "seed": 12})
    assert not torch.allclose(first[:, 1:], other[:, 1:])
    with torch.inference_mode():
        inside = perturbation.perturbation_curves(tiny_net, gray_images.clone(), heat, 1, batch_size=4, **kw)
    torch.testing.assert_close(inside, first)


def test_correct_only_drops_misclassified_rows(tiny_net, gray_images):
    with torch.no_grad():
        predicted = tiny_net(gray_images).argmax(1)
    labels = predicted.clone()
    labels[0] = (labels[0] + 1) % 3
    heat = gray_images[:, 0]
    curves = perturbation.perturbation_curves(tiny_net, gray_images, heat, predicted, region_size=16,
                                              labels=labels, correct_only=True)
    assert torch.isnan(curves[0]).all() and not torch.isnan(curves[1:]).any()
    full = perturbation.perturbation_curves(tiny_net, gray_images, heat, predicted, region_size=16)
    torch.testing.assert_close(curves[1:], full[1:])
    assert perturbation.aopc(curves) == pytest.approx(float(perturbation.aopc_per_image(full)[1:].mean()))


def test_autocast_bfloat16_runs_close(tiny_net, gray_images):
    heat = gray_images[:, 0]
    exact = perturbation.perturbation_curves(tiny_net, gray_images, heat, 0, region_size=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = perturbation.perturbation_curves(tiny_net, gray_images, heat, 0, region_size=16)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, exact, atol=0.03, rtol=0)


def test_bad_arguments_are_named(tiny_net, gray_images):
    heat = gray_images[:, 0]
    with pytest.raises(ExplainError, match="order must be one of"):
        perturbation.perturbation_curves(tiny_net, gray_images, heat, 0, order="best")
    with pytest.raises(ExplainError, match="perturbation must be one of .*'salt'"):
        perturbation.perturbation_curves(tiny_net, gray_images, heat, 0, perturbation="salt")
    with pytest.raises(ExplainError, match="region_size"):
        perturbation.perturbation_curves(tiny_net, gray_images, heat, 0, region_size=0)
    with pytest.raises(ExplainError, match="heatmaps must be"):
        perturbation.perturbation_curves(tiny_net, gray_images, heat[:2], 0)
    with pytest.raises(ExplainError, match="needs heatmaps"):
        perturbation.perturbation_curves(tiny_net, gray_images, None, 0)
    with pytest.raises(ExplainError, match="targets must lie in"):
        perturbation.perturbation_curves(tiny_net, gray_images, heat, 5)
    with pytest.raises(ExplainError, match="curves must be"):
        perturbation.aopc(torch.zeros(3))
