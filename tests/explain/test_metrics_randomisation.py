"""Random-logit and eMPRT against Quantus; the edge-detector axiom: a model-independent map fails both."""

import numpy as np
import pytest
import quantus
import torch
from metrics_helpers import edge_detector, input_x_gradient, quantus_explain

from heatlens.explain.errors import ExplainError
from heatlens.explain.metrics import emprt, random_logit
from heatlens.explain.metrics.randomisation import randomised_copy

TARGETS = torch.tensor([0, 2, 1, 1])


@pytest.fixture
def net(tiny_net):
    return tiny_net.eval()


def test_random_logit_equals_quantus_with_spearman(net, gray_images):
    maps = input_x_gradient(net, gray_images, TARGETS)
    ref = quantus.RandomLogit(num_classes=3, seed=42, similarity_func=quantus.similarity_func.correlation_spearman,
                              disable_warnings=True)(
        model=net, x_batch=gray_images.numpy(), y_batch=TARGETS.numpy(), a_batch=maps[:, None].numpy(),
        explain_func=quantus_explain, device="cpu", channel_first=True)
    np.random.seed(42)
    index = np.random.randint(0, 2, 4)
    off = torch.tensor([[c for c in range(3) if c != t][i] for t, i in zip(TARGETS.tolist(), index)])
    mine = random_logit(net, gray_images, TARGETS, maps, input_x_gradient, off_targets=off)
    np.testing.assert_allclose(mine.numpy(), np.array(ref), atol=1e-6)


def test_random_logit_draws_another_class_and_flags_class_blind_maps(net, gray_images):
    maps = input_x_gradient(net, gray_images, TARGETS)
    scores = random_logit(net, gray_images, TARGETS, maps, input_x_gradient, seed=0)
    torch.testing.assert_close(scores, random_logit(net, gray_images, TARGETS, maps, input_x_gradient, seed=0))
    assert bool((scores < 0.99).all())
    edges = edge_detector(net, gray_images, TARGETS)
    torch.testing.assert_close(random_logit(net, gray_images, TARGETS, edges, edge_detector), torch.ones(4))
    with pytest.raises(ExplainError, match="off_targets"):
        random_logit(net, gray_images, TARGETS, maps, input_x_gradient, off_targets=TARGETS)


def test_emprt_equals_quantus(net, gray_images):
    maps = input_x_gradient(net, gray_images, TARGETS)
    ref = quantus.EfficientMPRT(seed=42, complexity_func_kwargs={"n_bins": 100}, disable_warnings=True)(
        model=net, x_batch=gray_images.numpy(), y_batch=TARGETS.numpy(), a_batch=maps[:, None].numpy(),
        explain_func=quantus_explain, device="cpu", channel_first=True)
    mine = emprt(net, gray_images, TARGETS, maps, input_x_gradient, seed=42)
    np.testing.assert_allclose(mine.numpy(), np.array(ref), rtol=1e-5)


def test_randomised_copy_leaves_model_and_rng_alone(net):
    before = [p.clone() for p in net.parameters()]
    state = torch.get_rng_state()
    random = randomised_copy(net, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert torch.equal(state, torch.get_rng_state())
    assert not torch.equal(next(random.parameters()), before[0])


def test_edge_detector_fails_emprt(net, gray_images):
    edges = edge_detector(net, gray_images, TARGETS)
    torch.testing.assert_close(emprt(net, gray_images, TARGETS, edges, edge_detector), torch.zeros(4))
