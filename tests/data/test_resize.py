"""`data.resize`: stretch, pad (letterbox) and crop on a non-square picture; masks follow exactly, at any
resolution; the choice is part of the decoded cache's key."""

from pathlib import Path

import numpy as np
import pytest
from data_writers import write_block_images, write_png

from heatlens.data import build_datamodule
from heatlens.data.cache import cache_key
from heatlens.data.decode import DecodeOptions, Source, decode_sample
from heatlens.data.folders import list_covid_radiography


def _box(size: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    out = np.zeros((size, size), np.uint8)
    out[rows[0]:rows[1], cols[0]:cols[1]] = 1
    return out


@pytest.fixture
def tall(tmp_path: Path) -> tuple[Source, Source, Source]:
    """A 40 x 20 (rows x cols) picture with a bright block at rows 4..12, cols 2..8; its mask at the same
    resolution and at half resolution (the COVID database's 256 px masks for 299 px images)."""
    image = np.full((40, 20), 10, np.uint8)
    image[4:12, 2:8] = 250
    write_png(tmp_path / "x.png", image)
    write_png(tmp_path / "mask.png", (image > 100).astype(np.uint8) * 255)
    half = np.zeros((20, 10), np.uint8)
    half[2:6, 1:4] = 255
    write_png(tmp_path / "half.png", half)
    return Source(tmp_path / "x.png"), Source(tmp_path / "mask.png"), Source(tmp_path / "half.png")


# Hand-computed: where the block lands in the output square.
CASES = [
    ("pad", 80, (8, 24), (24, 36)),    # x2 to 80 x 40, centred: 20 px black columns each side
    ("pad", 20, (2, 6), (6, 9)),       # x0.5 to 20 x 10, 5 px black columns each side
    ("crop", 40, (0, 4), (4, 16)),     # centre square rows 10..30 kept (block cut to rows 10..12), x2
    ("stretch", 40, (4, 12), (4, 16)),  # rows x1, columns x2
]


@pytest.mark.parametrize(("mode", "size", "rows", "cols"), CASES)
def test_image_and_masks_land_in_the_same_place(tall, mode: str, size: int, rows, cols):
    image_source, mask_source, half_source = tall
    image, (mask, half) = decode_sample(image_source, [mask_source, half_source], DecodeOptions(size, 1, mode))
    expected = _box(size, rows, cols)
    assert np.array_equal((image[..., 0] > 127).astype(np.uint8), expected)
    assert np.array_equal(mask, expected)
    assert np.array_equal(half, expected)


def test_pad_background_is_black_and_the_picture_keeps_its_aspect(tall):
    image, _ = decode_sample(tall[0], [], DecodeOptions(80, 1, "pad"))
    assert (image[:, :20] == 0).all() and (image[:, 60:] == 0).all()
    assert (image[:, 20:60] >= 10).all()  # the picture itself: no black column inside it


def test_datamodule_batches_keep_masks_on_their_images(tmp_path: Path):
    write_block_images(tmp_path, 8, shape=(30, 50), block=(8, 16), mask_shape=(15, 25))  # masks at half size
    config = {"name": "covid_radiography", "root": str(tmp_path), "image_size": 50, "batch_size": 8,
              "augment": {}, "split": [0.75, 0.125, 0.125], "resize": "pad"}
    dm = build_datamodule(config)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    bright = dm.denormalize(batch["image"])[:, 0] > 0.5
    lung = batch["masks"]["lung"][:, 0].bool()
    # masks stored at half resolution: their odd block edges may round by one pixel row or column
    assert (bright == lung).float().mean() > 0.97
    assert not bright[:, :10].any() and not bright[:, 40:].any()  # letterbox rows 0..10 and 40..50 stay black


def test_every_pixel_changing_option_is_in_the_cache_key(tall, tmp_path: Path):
    root = tmp_path / "db"
    write_png(root / "a" / "images" / "x.png", np.zeros((40, 20), np.uint8))
    samples = list_covid_radiography(root, {}).samples
    base = DecodeOptions(32, 1, "pad", "middle")
    keys = {cache_key(samples, [], options) for options in (
        base, DecodeOptions(32, 1, "crop", "middle"), DecodeOptions(32, 1, "stretch", "middle"),
        DecodeOptions(32, 1, "pad", "first"), DecodeOptions(32, 3, "pad", "middle"), DecodeOptions(48, 1, "pad"))}
    assert len(keys) == 6
    assert cache_key(samples, [], DecodeOptions(32, 1, "pad", "middle")) == cache_key(samples, [], base)
