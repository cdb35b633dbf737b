"""The training seed fixes the order and every augmentation: two DataModules with one seed give bit-identical
training batches (num_workers 0 and 2, persistent workers or not), whatever the global RNGs hold; every
epoch, every worker and another seed differ; `data.seed` only draws the splits."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from data_writers import gradient_image, write_png

from heatlens.data import build_datamodule

AUGMENT = {"Affine": {"rotate": [-30, 30], "translate_percent": [-0.1, 0.1], "p": 1.0},
           "RandomBrightnessContrast": {"brightness_limit": 0.2, "contrast_limit": 0.2, "p": 1.0}}


@pytest.fixture(scope="module")
def identical_images(tmp_path_factory) -> Path:
    """24 copies of one picture: any two equal augmented images would mean two equal random draws."""
    root = tmp_path_factory.mktemp("same")
    picture = gradient_image(32, seed=0)
    for i in range(24):
        write_png(root / f"c{i % 2}" / f"x{i:02d}.png", picture)
    return root


def _training_epochs(root: Path, seed: int, workers: int, persistent: bool, data_seed: int = 0,
                     epochs: int = 2) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    # Scramble the global generators first: nothing may depend on them.
    torch.manual_seed(random.randrange(1 << 30))
    np.random.seed(random.randrange(1 << 30))
    random.seed()
    config = {"name": "image_folder", "root": str(root), "image_size": 32, "batch_size": 4, "augment": AUGMENT,
              "split": [0.5, 0.25, 0.25], "num_workers": workers, "persistent_workers": persistent, "seed": data_seed}
    dm = build_datamodule(config, seed=seed)
    dm.setup()
    loader = dm.train_dataloader()
    return [[(batch["index"], batch["image"]) for batch in loader] for _ in range(epochs)]


def _same(a, b) -> bool:
    return all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("workers", "persistent"), [(0, True), (2, True), (2, False)])
def test_same_seed_same_batches_every_epoch_and_worker_differs(identical_images: Path, workers: int, persistent: bool):
    first = _training_epochs(identical_images, seed=5, workers=workers, persistent=persistent)
    again = _training_epochs(identical_images, seed=5, workers=workers, persistent=persistent)
    assert all(_same(a, b) for a, b in zip(first, again, strict=True))
    for epoch in first:
        images = torch.cat([batch[1] for batch in epoch]).flatten(1)
        # all 12 training images differ: no two workers (batches 0, 2 vs 1) drew the same augmentations
        assert len({tuple(row.tolist()) for row in images}) == len(images) == 12
    assert not torch.equal(torch.cat([b[1] for b in first[0]]), torch.cat([b[1] for b in first[1]]))
    assert not torch.equal(torch.cat([b[0] for b in first[0]]), torch.cat([b[0] for b in first[1]]))  # reshuffled
    other = _training_epochs(identical_images, seed=6, workers=workers, persistent=persistent, epochs=1)
    assert not _same(first[0], other[0])


def test_workers_do_not_change_what_one_process_would_shuffle(identical_images: Path):
    """The order comes from the loader's own seeded generator, so it is the same with and without workers."""
    alone = _training_epochs(identical_images, seed=5, workers=0, persistent=True)
    pooled = _training_epochs(identical_images, seed=5, workers=2, persistent=False)
    for a, b in zip(alone, pooled, strict=True):
        assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b, strict=True))


def test_data_seed_draws_the_splits_and_the_training_seed_does_not(identical_images: Path):
    def splits(seed: int, data_seed: int) -> dict:
        dm = build_datamodule({"name": "image_folder", "root": str(identical_images), "image_size": 32,
                               "split": [0.5, 0.25, 0.25], "seed": data_seed}, seed=seed)
        dm.setup()
        return dm.split_ids

    assert splits(seed=1, data_seed=0) == splits(seed=2, data_seed=0)
    assert splits(seed=1, data_seed=0)["test"] != splits(seed=1, data_seed=3)["test"]


def test_one_stream_for_the_whole_pipeline(identical_images: Path):
    """Compose(seed=...) would hand every transform its own copy of one stream (equal draws); ours share one."""
    dm = build_datamodule({"name": "image_folder", "root": str(identical_images), "image_size": 32,
                           "augment": AUGMENT}, seed=3)
    dm.setup()
    dm.train_dataloader()
    affine, brightness = dm.train_dataset.transform.transforms[:2]
    assert affine.py_random is brightness.py_random and affine.random_generator is brightness.random_generator
