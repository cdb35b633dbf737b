"""Sparseness and entropy against Quantus and hand-computed toy maps."""

import math

import numpy as np
import pytest
import quantus
import torch

from heatlens.explain.errors import ExplainError
from heatlens.explain.metrics import entropy, sparseness


@pytest.fixture
def maps() -> torch.Tensor:
    return torch.randn(3, 7, 7, generator=torch.Generator().manual_seed(3))


def test_sparseness_equals_quantus(maps):
    x = np.zeros((3, 1, 7, 7), dtype=np.float32)
    ref = quantus.Sparseness(disable_warnings=True)(model=None, x_batch=x, y_batch=np.zeros(3, dtype=int),
                                                    a_batch=maps[:, None].numpy())
    np.testing.assert_allclose(sparseness(maps).numpy(), ref, rtol=1e-5)


def test_entropy_equals_quantus(maps):
    x = np.zeros((3, 1, 7, 7), dtype=np.float32)
    ref = quantus.Complexity(disable_warnings=True)(model=None, x_batch=x, y_batch=np.zeros(3, dtype=int),
                                                    a_batch=maps[:, None].numpy())
    np.testing.assert_allclose(entropy(maps).numpy(), ref, rtol=1e-5)


def test_toy_maps_by_hand():
    uniform = torch.ones(1, 4, 4)
    one_hot = torch.zeros(1, 4, 4)
    one_hot[0, 1, 2] = 5.0
    assert entropy(uniform).item() == pytest.approx(math.log(16), rel=1e-6)
    assert entropy(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    assert sparseness(uniform).item() == pytest.approx(0.0, abs=1e-6)
    # one non-zero of n: G = (n - 1) / n up to the 1e-7 offset
    assert sparseness(one_hot).item() == pytest.approx(15 / 16, rel=1e-5)


def test_any_resolution_and_sign():
    cam = torch.rand(2, 7, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(sparseness(cam), sparseness(-cam))
    assert sparseness(torch.rand(2, 224, 224)).shape == (2,)


def test_bad_shape_names_argument():
    with pytest.raises(ExplainError, match="maps must be a \\(B, h, w\\)"):
        sparseness(torch.ones(4, 4))
