"""ROAD's linear imputation against pytorch-grad-cam's NoisyLinearImputer (scipy's direct sparse solve),
on crops of a real CT slice that pydicom ships: odd and even sizes, blob-shaped and scattered masks."""

import numpy as np
import pytest
import torch
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pytorch_grad_cam.metrics.road import NoisyLinearImputer

from heatlens.explain.metrics.imputation import linear_impute, noisy_linear_impute


@pytest.fixture(scope="module")
def ct() -> torch.Tensor:
    pixels = dcmread(get_testdata_file("CT_small.dcm")).pixel_array.astype(np.float64)
    return torch.from_numpy((pixels - pixels.mean()) / pixels.std())


def _images(ct: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(2, 3, height, width): three different crops of the slice as the channels of each image."""
    crops = [ct[y:y + height, x:x + width] for y, x in ((0, 0), (20, 11), (40, 30), (7, 50), (60, 3), (33, 33))]
    return torch.stack(crops).view(2, 3, height, width)


def _blob_mask(height: int, width: int, percent: int, seed: int) -> torch.Tensor:
    """The top `percent` % of a random 7x7 map upsampled: the removal shape ROAD gets from a CAM."""
    coarse = torch.rand(1, 1, 7, 7, generator=torch.Generator().manual_seed(seed))
    full = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")[0, 0]
    return full >= torch.quantile(full.flatten(), 1 - percent / 100)


def _reference(image: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    # The reference's mask marks the pixels it keeps.
    return NoisyLinearImputer(noise=0.0)(image.float(), (~removed).float())


@pytest.mark.parametrize("height,width", [(32, 32), (45, 70), (64, 37)])
@pytest.mark.parametrize("percent", [10, 50, 90])
def test_infill_equals_the_direct_sparse_solve(ct, height, width, percent):
    images = _images(ct, height, width)
    removed = torch.stack([_blob_mask(height, width, percent, seed) for seed in (0, 1)])
    mine = linear_impute(images, removed)
    for image, mask, filled in zip(images, removed, mine):
        torch.testing.assert_close(filled.float(), _reference(image, mask), atol=2e-5, rtol=0)
        torch.testing.assert_close(filled[:, ~mask], image[:, ~mask], atol=0, rtol=0)


def test_scattered_pixels_and_float32(ct):
    """Single removed pixels among known ones, and the float32 path (the model's usual dtype)."""
    images = _images(ct, 40, 40).float()
    generator = torch.Generator().manual_seed(2)
    removed = torch.rand(2, 40, 40, generator=generator) < torch.tensor([0.3, 0.97])[:, None, None]
    mine = linear_impute(images, removed)
    assert mine.dtype == torch.float32
    for image, mask, filled in zip(images, removed, mine):
        torch.testing.assert_close(filled, _reference(image, mask), atol=1e-4, rtol=0)


def test_a_batch_runs_until_its_hardest_system_converges(ct):
    """The easy system converging first does not stop the hard one."""
    images = _images(ct, 48, 48)
    removed = torch.stack([_blob_mask(48, 48, 5, 3), _blob_mask(48, 48, 95, 4)])
    for image, mask, filled in zip(images, removed, linear_impute(images, removed)):
        torch.testing.assert_close(filled.float(), _reference(image, mask), atol=2e-5, rtol=0)


def test_noise_is_drawn_per_image_in_batch_order(ct):
    images = _images(ct, 32, 32).float()
    removed = torch.stack([_blob_mask(32, 32, 50, seed) for seed in (5, 6)])
    noisy = noisy_linear_impute(images, removed, 0.5, torch.Generator().manual_seed(9))
    generator = torch.Generator().manual_seed(9)
    draws = torch.stack([torch.randn(3, 32, 32, generator=generator) for _ in range(2)])
    expected = torch.where(removed[:, None], linear_impute(images, removed) + 0.5 * draws, images)
    torch.testing.assert_close(noisy, expected)


@pytest.mark.parametrize("size", [8, 24])
def test_an_image_with_no_known_pixel_is_filled_with_0_alone(ct, size):
    """A fully removed image (no known neighbour: a singular system) comes back 0 without spoiling the
    other image of its batch; 8x8 images are solved densely at once, 24x24 ones by the multigrid."""
    images = _images(ct, size, size)
    removed = torch.stack([_blob_mask(size, size, 40, 7), torch.ones(size, size, dtype=torch.bool)])
    filled = linear_impute(images, removed)
    torch.testing.assert_close(filled[0].float(), _reference(images[0], removed[0]), atol=2e-5, rtol=0)
    assert torch.equal(filled[1], torch.zeros_like(filled[1]))
