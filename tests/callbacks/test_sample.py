"""The explained sample: every class of a class-ordered test set, the same images for any run or number of
ranks, and a shared Grad-CAM pass equal to Grad-CAM of the images themselves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from callbacks_helpers import ClassOrderedImages, run_in_group
from explain_models import TinyConvNet
from torch.utils.data import DataLoader, DistributedSampler

from heatlens.callbacks import ExplainedSample
from heatlens.explain import cam
from heatlens.explain.images import thumbnails

pytestmark = pytest.mark.usefixtures("one_thread")


def _sample(loader: DataLoader, max_images: int | None, how: str = "stratified", seed: int = 0) -> ExplainedSample:
    torch.manual_seed(seed)
    dataset = loader.dataset
    return ExplainedSample.from_loader(TinyConvNet(width=4), loader, ["a", "b", "c"], dataset.mask_kinds,
                                       max_images, how)


def test_shared_pass_equals_gradcam_of_the_explained_images() -> None:
    dataset = ClassOrderedImages((12, 6, 2))
    sample = _sample(DataLoader(dataset, batch_size=4), max_images=6)
    rows = sample.cams
    # Six of twenty images, listed class by class: every class is explained.
    assert len(rows.index) == 6 and set(rows.labels.tolist()) == {0, 1, 2}
    assert rows.labels.tolist() == dataset.labels[rows.index].tolist()
    assert rows.ids.tolist() == [dataset.ids[i] for i in rows.index]

    images = dataset.images[rows.index]
    reference = cam.gradcam_all_classes(sample.net, images)  # one batch of exactly these images
    np.testing.assert_allclose(rows.maps, reference.maps.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rows.logits, reference.logits.numpy(), rtol=1e-5, atol=1e-6)
    predicted = reference.logits.argmax(dim=1)
    np.testing.assert_allclose(rows.predicted_maps(), cam.relu(cam.heatmaps_for(reference, predicted)).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert rows.thumbnails.dtype == np.uint8 and rows.thumbnails.shape == (6, 16, 16)
    np.testing.assert_array_equal(rows.thumbnails, thumbnails(sample.denormalize(images)))
    # The lung mask covers the left half: the left two of the 4 x 4 feature cells, wholly.
    expected = np.zeros((6, 4, 4), np.float32)
    expected[:, :, :2] = 1.0
    np.testing.assert_array_equal(rows.masks["lung"], expected)


def test_the_same_images_whatever_the_model_and_the_smaller_samples_are_inside() -> None:
    loader = DataLoader(ClassOrderedImages((12, 6, 2)), batch_size=8)
    one, other = _sample(loader, 6, seed=0), _sample(loader, 6, seed=1)
    assert one.positions.tolist() == other.positions.tolist()
    assert not np.allclose(one.cams.maps, other.cams.maps)  # really two different models
    assert set(one.first(3)) <= set(one.positions) and len(one.first(3)) == 3
    assert set(_sample(loader, 6, "balanced").cams.labels.tolist()) == {0, 1, 2}
    assert _sample(loader, 6, "first").positions.tolist() == [0, 1, 2, 3, 4, 5]


def _explain_on_ranks(rank: int, world_size: int, out: str) -> None:
    dataset = ClassOrderedImages((12, 6, 3))  # 21 images: the 2-rank sampler repeats one
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)
    loader = DataLoader(dataset, batch_size=4, sampler=sampler)
    for max_images in (None, 7):
        sample = _sample(loader, max_images)
        rows = sample.gathered_cams()
        extra = sample.gather({"double": 2 * sample.cams.labels})
        if rank == 0:
            np.savez(f"{out}-{max_images}.npz", index=rows.index, ids=rows.ids, labels=rows.labels, maps=rows.maps,
                     logits=rows.logits, thumbnails=rows.thumbnails, lung=rows.masks["lung"], first=sample.first(4),
                     double=extra["double"], extra_ids=extra["ids"])
        else:
            assert rows is None and extra is None


def test_two_ranks_explain_and_gather_what_one_process_does(tmp_path: Path) -> None:
    # One group for both sample sizes: starting processes is what costs time on 2 cores.
    run_in_group(_explain_on_ranks, 2, str(tmp_path / "two"))
    _explain_on_ranks(0, 1, str(tmp_path / "one"))
    for max_images in (None, 7):
        two, one = np.load(tmp_path / f"two-{max_images}.npz"), np.load(tmp_path / f"one-{max_images}.npz")
        assert len(one["index"]) == (21 if max_images is None else 7)
        assert len(set(two["ids"].tolist())) == len(two["ids"])  # the repeated sample counted once
        for key in ("index", "ids", "labels", "thumbnails", "lung", "first", "double", "extra_ids"):
            assert np.array_equal(two[key], one[key]), key
        np.testing.assert_allclose(two["maps"], one["maps"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(two["logits"], one["logits"], rtol=1e-5, atol=1e-6)
        assert np.array_equal(one["double"], 2 * one["labels"])


@pytest.mark.slow
def test_memory_grows_by_the_per_image_rows_not_by_the_images() -> None:
    def growth(count: int) -> float:
        tests = Path(__file__).parents[1]  # the probe imports the shared test models
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tests), str(tests / "callbacks")])}
        done = subprocess.run([sys.executable, str(Path(__file__).parent / "memory_probe.py"), str(count)],
                              capture_output=True, text=True, check=True, env=env)
        return float(done.stdout.split()[-1])

    small, large = growth(100), growth(400)
    # Per image the sample keeps 3 maps of 16 x 16 float32, a 64 x 64 uint8 thumbnail and a 16 x 16 mask
    # share: 8 KiB, held at most three times while gathering. Keeping the 256 px images would add
    # 256 KiB per image: 75 MiB more for the 300 extra images.
    rows_mib = 300 * 8 / 1024 * 3
    assert large - small < rows_mib + 16, (small, large)
