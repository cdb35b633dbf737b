"""Max-sensitivity against Quantus with the same noise, and toy axioms."""

import numpy as np
import pytest
import quantus
import torch
from metrics_helpers import input_x_gradient, quantus_explain

from heatlens.explain.errors import ExplainError
from heatlens.explain.metrics import max_sensitivity

TARGETS = torch.tensor([0, 2, 1, 1])


@pytest.fixture
def net(tiny_net):
    return tiny_net.eval()


def test_max_sensitivity_equals_quantus_with_the_same_noise(net, gray_images):
    samples, radius = 3, 0.2
    generator = torch.Generator().manual_seed(9)
    draws = iter([(2 * torch.stack([torch.rand(gray_images.shape[1:], generator=generator) for _ in range(4)]) - 1)
                  * radius for _ in range(samples)])

    def add_my_noise(arr, indices, **kwargs):
        return arr + next(draws).reshape(len(arr), -1).numpy()

    maps = input_x_gradient(net, gray_images, TARGETS)
    ref = quantus.MaxSensitivity(nr_samples=samples, perturb_func=add_my_noise, disable_warnings=True)(
        model=net, x_batch=gray_images.numpy(), y_batch=TARGETS.numpy(), a_batch=maps[:, None].numpy(),
        explain_func=quantus_explain, device="cpu", channel_first=True)
    mine = max_sensitivity(net, gray_images, TARGETS, maps, input_x_gradient, nr_samples=samples, radius=radius,
                           seed=9)
    np.testing.assert_allclose(mine.numpy(), np.array(ref), rtol=1e-4)


def test_constant_explainer_has_zero_sensitivity_and_noise_is_seeded(net, gray_images):
    def constant(model, images, targets):
        return torch.ones(len(images), 5, 5)

    torch.testing.assert_close(max_sensitivity(net, gray_images, TARGETS, torch.ones(4, 5, 5), constant),
                               torch.zeros(4))
    maps = input_x_gradient(net, gray_images, TARGETS)
    first = max_sensitivity(net, gray_images, TARGETS, maps, input_x_gradient, nr_samples=2, seed=1)
    torch.testing.assert_close(first, max_sensitivity(net, gray_images, TARGETS, maps, input_x_gradient,
                                                      nr_samples=2, seed=1))
    assert bool((first > 0).all())


def test_bad_arguments(net, gray_images):
    with pytest.raises(ExplainError, match="nr_samples"):
        max_sensitivity(net, gray_images, TARGETS, torch.ones(4, 5, 5), input_x_gradient, nr_samples=0)
