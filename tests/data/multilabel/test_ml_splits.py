"""Multi-label splits: whole patients, each finding's positives shared out by the ratios, seeded."""

import numpy as np

from heatlens.data.splits import make_splits

NAN = np.nan


def _toy() -> tuple[np.ndarray, np.ndarray]:
    """Six patients of two images; finding A in patients 0-2 (both images), B in one image of patient 3."""
    groups = np.repeat([f"p{i}" for i in range(6)], 2)
    matrix = np.zeros((12, 2))
    matrix[:6, 0] = 1.0
    matrix[6, 1], matrix[7, 1] = 1.0, NAN
    return matrix, groups


def test_each_split_gets_one_patient_of_each_finding_with_thirds():
    matrix, groups = _toy()
    parts = make_splits(matrix, [1 / 3, 1 / 3, 1 / 3], seed=5, groups=groups)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(12))
    patients = {name: set(groups[idx]) for name, idx in parts.items()}
    assert not (patients["train"] & patients["val"] or patients["train"] & patients["test"]
                or patients["val"] & patients["test"])
    for idx in parts.values():
        assert len(idx) == 4  # two patients each
        assert np.nansum(matrix[idx, 0]) == 2.0  # exactly one of the three A patients
    assert sum(np.nansum(matrix[idx, 1]) for idx in parts.values()) == 1.0  # the NaN is no positive


def test_same_seed_same_split_and_rare_positives_reach_every_split():
    rng = np.random.default_rng(0)
    matrix = (rng.random((600, 4)) < [0.02, 0.1, 0.3, 0.5]).astype(float)
    matrix[rng.random(matrix.shape) < 0.1] = NAN
    groups = rng.integers(0, 200, 600).astype(str)
    first = make_splits(matrix, [0.7, 0.15, 0.15], seed=1, groups=groups)
    again = make_splits(matrix, [0.7, 0.15, 0.15], seed=1, groups=groups)
    assert all(np.array_equal(first[s], again[s]) for s in first)
    totals = np.nansum(matrix, axis=0)
    for name, share in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        positives = np.nansum(matrix[first[name]], axis=0)
        assert np.all(positives >= 1)
        # Whole patients (about 3 images each) move at once: within 3 images of each finding's quota.
        assert np.all(np.abs(positives - share * totals) <= 3), (name, positives, share * totals)
