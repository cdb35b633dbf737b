"""Splits: reproducible, stratified, exact ratios, group-disjoint, predefined honoured; balance modes."""

import hashlib
import logging

import numpy as np
import pytest

from heatlens.data.errors import DataError
from heatlens.data.splits import class_weights, downsample, ids_hash, make_splits, validate_ratios

LABELS = np.repeat([0, 1, 2, 3], [170, 280, 480, 70])  # the phantom's imbalance, 1000 images


def test_reproducible_for_a_seed_and_different_across_seeds():
    first = make_splits(LABELS, [0.8, 0.1, 0.1], seed=3)
    again = make_splits(LABELS, [0.8, 0.1, 0.1], seed=3)
    other = make_splits(LABELS, [0.8, 0.1, 0.1], seed=4)
    assert all(np.array_equal(first[s], again[s]) for s in first)
    assert not np.array_equal(first["test"], other["test"])


@pytest.mark.parametrize("ratios", [[0.8, 0.1, 0.1], [0.7, 0.15, 0.15], [0.6, 0.3, 0.1]])
def test_stratified_exact_sizes_and_a_partition(ratios):
    parts = make_splits(LABELS, ratios, seed=0)
    joined = np.concatenate([parts["train"], parts["val"], parts["test"]])
    assert np.array_equal(np.sort(joined), np.arange(len(LABELS)))  # every image exactly once
    for share, split in zip(ratios, ("train", "val", "test")):
        assert len(parts[split]) == round(share * len(LABELS))
        counts = np.bincount(LABELS[parts[split]], minlength=4)
        assert np.all(np.abs(counts - share * np.bincount(LABELS)) <= 1.0)  # per class within one image


@pytest.mark.parametrize("ratios", [[0.8, 0.2], [0.7, 0.3]])
def test_two_ratios_make_held_out_both_val_and_test(ratios, caplog):
    with caplog.at_level(logging.WARNING):
        parts = make_splits(LABELS, ratios, seed=0)
    assert np.array_equal(parts["val"], parts["test"])
    assert len(parts["test"]) == round(ratios[1] * len(LABELS))
    assert not set(parts["train"]) & set(parts["test"])
    assert "both validation and test" in caplog.text


def test_groups_never_cross_splits_and_stay_roughly_stratified():
    rng = np.random.default_rng(0)
    patients = rng.integers(0, 150, len(LABELS))
    labels = LABELS.copy()
    parts = make_splits(labels, [0.7, 0.15, 0.15], seed=1, groups=patients)
    seen = [set(patients[parts[s]]) for s in ("train", "val", "test")]
    assert not seen[0] & seen[1] and not seen[0] & seen[2] and not seen[1] & seen[2]
    assert abs(len(parts["train"]) / len(labels) - 0.7) < 0.05
    for split, share in (("train", 0.7), ("test", 0.15)):
        fractions = np.bincount(labels[parts[split]], minlength=4) / np.bincount(labels)
        assert np.all(np.abs(fractions - share) < 0.08)


def test_predefined_splits_win_and_missing_val_is_carved_from_train():
    predefined = np.array(["train"] * 800 + ["test"] * 200)
    labels = np.tile([0, 1], 500)
    parts = make_splits(labels, [0.8, 0.1, 0.1], seed=0, predefined=predefined)
    assert np.array_equal(parts["test"], np.arange(800, 1000))
    assert len(parts["val"]) == round(800 * 0.1 / 0.9) and not set(parts["val"]) & set(parts["train"])
    assert set(parts["val"]) | set(parts["train"]) == set(range(800))
    two = make_splits(labels, [0.8, 0.2], seed=0, predefined=predefined)
    assert np.array_equal(two["val"], two["test"]) and len(two["train"]) == 800


def test_downsample_to_smallest_class_and_per_predefined_split():
    keep = downsample(LABELS, seed=0)
    assert np.array_equal(np.bincount(LABELS[keep]), [70, 70, 70, 70])
    within = np.where(np.arange(len(LABELS)) % 2 == 0, "train", "test")
    keep = downsample(LABELS, seed=0, within=within)
    for part in ("train", "test"):
        assert np.array_equal(np.bincount(LABELS[keep][within[keep] == part]), [35, 35, 35, 35])


def test_class_weights_are_inverse_frequency():
    weights = class_weights(np.array([0, 0, 0, 1]), 2)
    assert np.allclose(weights, [4 / (2 * 3), 4 / (2 * 1)])
    assert np.allclose(class_weights(np.array([0, 1, 2]), 3), 1.0)
    # the weighted class counts are equal: each class contributes the same total weight
    weights = class_weights(LABELS, 4)
    assert np.allclose(weights * np.bincount(LABELS), len(LABELS) / 4)


def test_ids_hash_is_sha256_of_sorted_ids():
    assert ids_hash(["b", "a"]) == hashlib.sha256(b"a\nb").hexdigest() == ids_hash(["a", "b"])


@pytest.mark.parametrize("ratios", [[0.5, 0.3], [1.0], [0.8, -0.1, 0.3], [0.5, 0.2, 0.2, 0.1]])
def test_bad_ratios_name_the_key(ratios):
    with pytest.raises(DataError, match=r"data\.split="):
        validate_ratios(ratios)
