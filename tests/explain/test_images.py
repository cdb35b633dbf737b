"""Per-image summaries kept beside the heatmaps: thumbnails and mask shares, against hand-computed values."""

import numpy as np
import pytest
import torch

from heatlens.explain import ExplainError
from heatlens.explain.images import mask_shares, thumbnails


def test_thumbnail_is_the_grey_area_average_in_uint8() -> None:
    image = torch.zeros(1, 3, 4, 4)
    image[0, 0, :2, :2] = 1.0  # top-left block: red only -> grey 1/3
    image[0, :, 2:, 2:] = 0.5  # bottom-right block: grey 0.5 everywhere
    image[0, :, 0, 2] = 1.0  # one white pixel of the top-right block -> 1/4
    small = thumbnails(image, side=2)
    assert small.dtype == np.uint8
    assert small[0].tolist() == [[round(255 / 3), round(255 / 4)], [0, round(255 * 0.5)]]


def test_thumbnail_keeps_the_aspect_ratio_and_never_enlarges() -> None:
    assert thumbnails(torch.rand(2, 1, 128, 64)).shape == (2, 64, 32)
    assert thumbnails(torch.rand(1, 1, 32, 32)).shape == (1, 32, 32)
    with pytest.raises(ExplainError, match="images must be"):
        thumbnails(torch.rand(32, 32))


def test_mask_share_is_the_covered_fraction_of_each_cell() -> None:
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    mask[0, 0, :2, :2] = 1  # the whole top-left cell of a 2 x 2 grid
    mask[0, 0, 3, 3] = 1  # one of the four pixels of the bottom-right cell
    np.testing.assert_array_equal(mask_shares(mask, (2, 2)), [[[1.0, 0.0], [0.0, 0.25]]])
    np.testing.assert_array_equal(mask_shares(mask[:, 0], (1, 1)), [[[5 / 16]]])
