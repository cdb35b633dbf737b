"""Planted check: on a small trained model, random maps rank last on every faithfulness metric, and a
model-independent edge detector fails the randomisation tests that Grad-CAM passes."""

import pytest
import torch
from explain_models import TinyConvNet
from metrics_helpers import edge_detector

from heatlens.explain import cam
from heatlens.explain.metrics import METRICS, emprt, random_logit


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 1: a bright 8x8 square at a random place in noise; class 0: noise only."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 32, 32, generator=g) * 0.3
    labels = torch.arange(n) % 2
    for i in range(n):
        if labels[i]:
            r, c = torch.randint(0, 24, (2,), generator=g).tolist()
            images[i, 0, r:r + 8, c:c + 8] += 2.0
    return images, labels


@pytest.fixture(scope="module")
def trained() -> TinyConvNet:
    torch.manual_seed(0)
    model = TinyConvNet(in_chans=1, num_classes=2, width=16)
    images, labels = _blobs(128, seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimiser.step()
    return model.eval()


def gradcam(model, images, targets):
    out = cam.gradcam_all_classes(model, images)
    return cam.relu(cam.heatmaps_for(out, torch.as_tensor(targets).long())).cpu()


def signed_gradcam(model, images, targets):
    """Grad-CAM before its ReLU: a randomised model's ReLU'd CAM is often all zero (entropy 0, eMPRT -1)."""
    out = cam.gradcam_all_classes(model, images)
    return cam.heatmaps_for(out, torch.as_tensor(targets).long()).cpu()


def random_maps(model, images, targets):
    return torch.rand(len(images), *images.shape[-2:], generator=torch.Generator().manual_seed(0))


def test_random_maps_rank_last_on_faithfulness(trained):
    images, labels = _blobs(8, seed=1)
    images, labels = images[labels == 1], labels[labels == 1]  # the evidence lives in the square
    assert bool((trained(images).argmax(1) == labels).all())
    for name, metric in METRICS.items():
        if metric.family != "faithfulness":
            continue
        ours = metric.fn(trained, images, labels, gradcam(trained, images, labels)).nanmean()
        chance = metric.fn(trained, images, labels, random_maps(trained, images, labels)).nanmean()
        assert (ours > chance) == metric.higher_is_better, (name, float(ours), float(chance))


def test_edge_detector_fails_randomisation_where_gradcam_passes(trained):
    images, labels = _blobs(8, seed=2)
    maps, edges = signed_gradcam(trained, images, labels), edge_detector(trained, images, labels)
    assert random_logit(trained, images, labels, edges, edge_detector).nanmean() > 0.99
    assert random_logit(trained, images, labels, maps, signed_gradcam).nanmean() < 0.5
    assert emprt(trained, images, labels, edges, edge_detector).abs().max() < 1e-6
    assert emprt(trained, images, labels, maps, signed_gradcam).nanmean() > 0.1
