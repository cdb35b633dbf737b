"""Fixtures for the explain tests: tiny contract models and images, one torch thread."""

import pytest
import torch

from explain_models import TimmNet, TinyConvNet, randomise_batchnorm


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine two spinning
    OpenMP threads made a 32 px forward ~60x slower; restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_net() -> TinyConvNet:
    torch.manual_seed(0)
    return randomise_batchnorm(TinyConvNet(in_chans=1, num_classes=3))


@pytest.fixture(scope="module")
def timm_net() -> TimmNet:
    torch.manual_seed(0)
    return randomise_batchnorm(TimmNet("resnet18", in_chans=3, num_classes=3))


@pytest.fixture
def gray_images() -> torch.Tensor:
    return torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def rgb_images() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
