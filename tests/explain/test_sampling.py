"""Which test images are explained: a sample that depends only on the test set's ids and labels."""

import hashlib

import numpy as np
import pytest

from heatlens.explain import ExplainError
from heatlens.explain.sampling import choose_sample, explanation_order

# Listed class by class, as datasets on disk are: the first positions are all class 0.
LABELS = np.repeat([0, 1, 2, 3], [50, 30, 15, 5])
IDS = [f"class{c}/img{i:03d}.png" for i, c in enumerate(LABELS)]


def test_stratified_takes_every_class_then_classes_in_proportion() -> None:
    chosen = choose_sample(IDS, LABELS, 8, "stratified")
    # One image per class first, then the class due next: image r of a class of n is due at
    # (r + 0.5) / n of the test set: 1.5/50, 2.5/50 = 1.5/30 (class 0 first), 3.5/50.
    assert np.bincount(LABELS[chosen], minlength=4).tolist() == [4, 2, 1, 1]
    big = choose_sample(IDS, LABELS, 40, "stratified")
    np.testing.assert_allclose(np.bincount(LABELS[big], minlength=4), 40 * np.bincount(LABELS) / 100, atol=1.0)


def test_balanced_takes_classes_in_turn_while_they_last() -> None:
    assert np.bincount(LABELS[choose_sample(IDS, LABELS, 8, "balanced")]).tolist() == [2, 2, 2, 2]
    assert np.bincount(LABELS[choose_sample(IDS, LABELS, 30, "balanced")]).tolist() == [9, 8, 8, 5]


def test_first_keeps_the_first_positions() -> None:
    assert choose_sample(IDS, LABELS, 5, "first").tolist() == [0, 1, 2, 3, 4]
    assert choose_sample(IDS, LABELS, None, "stratified").tolist() == list(range(len(IDS)))


def test_within_a_class_images_follow_the_sha256_of_their_id() -> None:
    chosen = choose_sample(IDS, LABELS, 4, "stratified")
    for c in range(4):
        members = [IDS[i] for i in np.flatnonzero(LABELS == c)]
        expected = min(members, key=lambda i: hashlib.sha256(i.encode()).digest())
        assert [IDS[i] for i in chosen if LABELS[i] == c] == [expected]


@pytest.mark.parametrize("how", ["stratified", "balanced"])
def test_the_sample_depends_only_on_the_ids_and_labels(how: str) -> None:
    shuffled = np.random.default_rng(7).permutation(len(IDS))
    ids, labels = [IDS[i] for i in shuffled], LABELS[shuffled]
    # Another listing order of the same test set: the same images.
    assert sorted(ids[i] for i in choose_sample(ids, labels, 12, how)) == \
        sorted(IDS[i] for i in choose_sample(IDS, LABELS, 12, how))
    # Smaller samples (attributions, sanity) are part of larger ones (Grad-CAM, AOPC).
    order = explanation_order(IDS, LABELS, how)
    assert sorted(order.tolist()) == list(range(len(IDS)))
    assert set(choose_sample(IDS, LABELS, 5, how)) <= set(choose_sample(IDS, LABELS, 12, how))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ExplainError, match="sample='random': choose one of stratified, balanced, first"):
        explanation_order(IDS, LABELS, "random")
    with pytest.raises(ExplainError, match="3 ids for 100 labels"):
        explanation_order(IDS[:3], LABELS)
